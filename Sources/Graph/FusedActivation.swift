#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// An activation recorded as part of the layer before it (`fuse-activation`), so a runtime applies
/// it while the layer's output is still in cache.
///
/// In the IR a fused layer is the same op type (`Conv`, `ConvTranspose`, `Gemm`, `MatMul`) in the
/// domain ``FusedActivation/domain`` with two more attributes:
///
///     y = Relu(Conv(x, w, b))   →   y = ai.rebirth.Conv<activation = "Relu", …conv attributes>(x, w, b)
///     activation: string        one of the op names below, spelled as in ONNX
///     activation_params: floats Clip [min, max]; LeakyRelu [alpha]; HardSigmoid [alpha, beta];
///                               absent for the others
///
/// The domain keeps every standard-domain pattern away from fused layers (the greedy driver offers
/// only default-domain nodes), so no later pass can misread a fused Conv as a plain one. The ONNX
/// exporter writes a fused layer back as the standard layer followed by the standard activation
/// node; `.tmf` stores the activation in the node record; rebirth's runtime applies it in the
/// layer's kernel.
public enum FusedActivation: Equatable, Sendable {
  case relu
  case clip(min: Float, max: Float)
  case leakyRelu(alpha: Float)
  case sigmoid
  case hardSigmoid(alpha: Float, beta: Float)
  case hardSwish
  case tanh

  /// The domain of fused layers.
  public static let domain = "ai.rebirth"
  /// The layers an activation can be fused into.
  public static let layerOpTypes: Set<String> = [OpType.conv, OpType.convTranspose, OpType.gemm, OpType.matMul]
  public static let attributeName = "activation"
  public static let parametersName = "activation_params"

  /// The ONNX op type of the activation.
  public var opType: String {
    switch self {
    case .relu: OpType.relu
    case .clip: OpType.clip
    case .leakyRelu: OpType.leakyRelu
    case .sigmoid: OpType.sigmoid
    case .hardSigmoid: OpType.hardSigmoid
    case .hardSwish: OpType.hardSwish
    case .tanh: OpType.tanh
    }
  }

  public var parameters: [Float] {
    switch self {
    case .clip(let lo, let hi): [lo, hi]
    case .leakyRelu(let alpha): [alpha]
    case .hardSigmoid(let alpha, let beta): [alpha, beta]
    default: []
    }
  }

  /// The attributes that record it on a fused layer.
  public var attributes: [Attribute] {
    var list = [Attribute(Self.attributeName, .string(Array(opType.utf8)))]
    if !parameters.isEmpty { list.append(Attribute(Self.parametersName, .floats(parameters))) }
    return list
  }

  /// The activation of op type `opType` with `parameters` as `attributes` records them.
  public init?(opType: String, parameters: [Float]) {
    switch (opType, parameters.count) {
    case (OpType.relu, 0): self = .relu
    case (OpType.clip, 2): self = .clip(min: parameters[0], max: parameters[1])
    case (OpType.leakyRelu, 1): self = .leakyRelu(alpha: parameters[0])
    case (OpType.sigmoid, 0): self = .sigmoid
    case (OpType.hardSigmoid, 2): self = .hardSigmoid(alpha: parameters[0], beta: parameters[1])
    case (OpType.hardSwish, 0): self = .hardSwish
    case (OpType.tanh, 0): self = .tanh
    default: return nil
    }
  }

  /// The activation fused into `node`, when it is a fused layer with a valid record.
  public init?(of node: Node) {
    guard node.domain == Self.domain, Self.layerOpTypes.contains(node.opType),
      let name = node.attribute(Self.attributeName)?.string
    else { return nil }
    self.init(opType: name, parameters: node.attribute(Self.parametersName)?.floats ?? [])
  }

  /// Applies it to one value, as the ONNX op defines it.
  @inlinable public func apply(_ x: Float) -> Float {
    switch self {
    case .relu: return max(x, 0)
    case .clip(let lo, let hi): return min(max(x, lo), hi)
    case .leakyRelu(let alpha): return x < 0 ? alpha * x : x
    case .sigmoid: return 1 / (1 + _expf(-x))
    case .hardSigmoid(let alpha, let beta): return max(0, min(1, alpha * x + beta))
    case .hardSwish: return x * max(0, min(1, x / 6 + 0.5))
    case .tanh: return _tanhf(x)
    }
  }
}

@usableFromInline func _expf(_ x: Float) -> Float { Float(exp(Double(x))) }
@usableFromInline func _tanhf(_ x: Float) -> Float { Float(tanh(Double(x))) }
