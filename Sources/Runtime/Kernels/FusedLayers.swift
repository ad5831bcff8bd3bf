import Graph

/// Fused layers (`fuse-activation`): Conv, ConvTranspose, Gemm and MatMul of the `ai.rebirth`
/// domain, which apply their recorded activation (``FusedActivation``) in the layer's own kernel,
/// on the output block each product has just written (per image and group for Conv, per plane for
/// depthwise Conv), instead of a separate node with its own buffer and pass over memory.
///
/// They are the standard kernels: each reads the activation with ``FusedActivation/fused(_:)``,
/// which is nil for a default-domain node.
let fusedLayerKernels: [(String, any Kernel.Type)] = [
  (OpType.conv, Conv.self),
  (OpType.convTranspose, ConvTranspose.self),
  (OpType.gemm, Gemm.self),
  (OpType.matMul, MatMul.self),
]

extension FusedActivation {
  /// The activation the node being built records: nil for a default-domain node; for a fused
  /// (`ai.rebirth`) one its `activation` and `activation_params`, which must be valid.
  static func fused(_ builder: KernelBuilder) throws(RuntimeError) -> FusedActivation? {
    guard builder.node.domain == domain else { return nil }
    guard let name = try builder.optionalString(attributeName) else {
      throw builder.attributeError(attributeName, "is required on a fused layer")
    }
    let parameters = try builder.optionalFloats(parametersName) ?? []
    guard let activation = FusedActivation(opType: name, parameters: parameters) else {
      throw builder.attributeError(attributeName, "unsupported activation '\(name)' with parameters \(parameters)")
    }
    return activation
  }

  /// Applies it in place to `count` floats at `y`, with the arithmetic of the standalone kernels
  /// (`ReluMap`, `Clip`, `LeakyReluMap`, `SigmoidMap`, `HardSigmoidMap`, `HardSwishMap`, `TanhMap`),
  /// so a fused layer computes exactly what the layer and the activation node compute.
  func apply(_ y: UnsafeMutablePointer<Float>, count: Int) {
    switch self {
    case .relu:
      for i in 0..<count { y[i] = y[i] > 0 ? y[i] : 0 }
    case .clip(let lo, let hi):
      for i in 0..<count {
        let v = y[i] < lo ? lo : y[i]
        y[i] = v > hi ? hi : v
      }
    case .leakyRelu(let alpha):
      for i in 0..<count { y[i] = y[i] >= 0 ? y[i] : alpha * y[i] }
    case .sigmoid:
      for i in 0..<count { y[i] = FastMath.sigmoid(y[i]) }
    case .hardSigmoid(let alpha, let beta):
      for i in 0..<count {
        let v = alpha * y[i] + beta
        let low = v < 0 ? 0 : v
        y[i] = low > 1 ? 1 : low
      }
    case .hardSwish:
      for i in 0..<count {
        let v = Float(1.0 / 6.0) * y[i] + 0.5
        let low = v < 0 ? 0 : v
        y[i] = y[i] * (low > 1 ? 1 : low)
      }
    case .tanh:
      for i in 0..<count { y[i] = FastMath.tanh(y[i]) }
    }
  }

  /// `apply(_:count:)` over large blocks split across `threads`.
  func apply(_ y: UnsafeMutablePointer<Float>, count: Int, threads: Int) {
    Parallel.forEach(count: count, threads: threads, grain: 1 << 15) { r in apply(y + r.lowerBound, count: r.count) }
  }
}
