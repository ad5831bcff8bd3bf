import Graph

/// DeepRebirth's streaming slimming, exact cases: two layers with nothing nonlinear between them
/// become one layer, when the merged layer costs fewer multiply-accumulates than the pair.
///
///     c = Conv<K1, s1, d1, pads p>(x, W1, B); y = AveragePool<k, s, pads 0>(c)
///       →  y = Conv<K = d1(K1−1)+1+(k−1)s1, stride s1·s, pads p>(x, W', B)         (METHODS 1.7.2)
///     a = AveragePool<k, s, pads 0>(x); y = Conv<K2, s2, d2, pads 0>(a, W2, B)
///       →  y = Conv<K = d2·s(K2−1)+k, stride s·s2, pads 0>(x, W', B)                (METHODS 1.7.6)
///     c = Conv<K1, s1, d1, pads p>(x, W1, B1); y = Conv<K2, s2, d2, pads 0>(c, W2, B2)
///       →  y = Conv<K = d1(K1−1)+1+d2·s1(K2−1), stride s1·s2, pads p>(x, W, B)      (METHODS 1.7.4)
///     h = Gemm|MatMul(x, W1, b1); y = Gemm|MatMul(h, W2, b2)
///       →  y = Gemm|MatMul(x, W1·W2, b1·W2 + b2)
///
/// Every composite kernel is the full convolution of the two kernels, the second one spread by
/// the first one's stride (an average pool is the box filter 1/(kh·kw) on the channel diagonal):
///
///     W[o, c, a·d2·s1 + u·d1, b·d2·s1 + v·d1] += Σ_m W2[o, m, a, b] · W1[m, c, u, v]
///
/// Conditions: float32, 2-D convolutions and pools with constant weights (not graph inputs), the
/// intermediate read once and no graph output, pool pads 0 and ceil_mode 0, second conv pads 0
/// (the first layer's output is zero-padded in the original, not in the composite), group 1 for
/// Conv→Conv (any group for the pool merges, which are per channel), `auto_pad` resolved from
/// static shapes, and static channel and spatial sizes for the cost model. The merge happens only
/// when the merged layer has fewer MACs than the pair (linear layers: fewer parameters too), unless
/// the option `force` is set: a 3×3 conv followed by a widening 1×1 stays as it is.
public struct StreamSlim: Pass {
  public static let name = "stream-slim"
  public static let summary =
    "Merge Conv→AveragePool, AveragePool→Conv, Conv→Conv and Gemm/MatMul→Gemm/MatMul pairs into one layer when it saves MACs"
  public static let isExact = true
  public static let isDefault = true
  public static let options: [PassOption] = [
    PassOption(
      "force", .bool, default: "false",
      "merge even when the merged layer costs more MACs (linear layers: or more parameters) than the pair")
  ]

  let cost: StreamCostModel

  public init(options: PassOptions) {
    cost = StreamCostModel(force: options.bool("force"))
  }

  public func run(_ rewriter: inout Rewriter) throws {
    rewriter.inferShapes()
    rewriter.applyGreedily([
      ConvAveragePool(cost: cost), AveragePoolConv(cost: cost), ConvConv(cost: cost),
      LinearLinear(cost: cost, opset: rewriter.opset),
    ])
  }
}

// MARK: - Cost model

/// Decides whether a merge pays: fewer MACs (and, for linear layers, fewer parameters).
struct StreamCostModel: Sendable {
  /// Merge whatever the cost.
  let force: Bool

  func accepts(macsBefore: Double, macsAfter: Double, parametersBefore: Double? = nil, parametersAfter: Double? = nil) -> Bool {
    if force { return true }
    guard macsAfter < macsBefore else { return false }
    if let before = parametersBefore, let after = parametersAfter, after >= before { return false }
    return true
  }

  /// The largest merged conv weight built, in elements: a larger one declines rather than allocate.
  static let maxMergedWeight = Double(1 << 26)

  /// The product of sizes, in floating point (declared shapes can be large enough to overflow Int).
  static func product(_ sizes: [Int]) -> Double { sizes.reduce(1.0) { $0 * Double($1) } }

  /// MACs of a merged conv; nil when its weight would be larger than ``maxMergedWeight``.
  static func convMACs(batch: Int, outChannels: Int, kernelChannels: Int, kernel: [Int], output: [Int]) -> Double? {
    let weight = product([outChannels, kernelChannels] + kernel)
    guard weight <= maxMergedWeight else { return nil }
    return Double(batch) * weight * product(output)
  }

  /// "MACs 1.2M → 0.8M".
  static func describe(macsBefore: Double, macsAfter: Double) -> String {
    "MACs \(count(macsBefore)) → \(count(macsAfter))"
  }

  /// A count as people read it: 576, 12.3K, 1.2M, 3.4G.
  static func count(_ n: Double) -> String {
    let units: [(Double, String)] = [(1e9, "G"), (1e6, "M"), (1e3, "K")]
    for (scale, suffix) in units where n >= scale {
      let scaled = (n / scale * 10).rounded() / 10
      return scaled == scaled.rounded() ? "\(Int(scaled))\(suffix)" : "\(scaled)\(suffix)"
    }
    return "\(Int(n))"
  }
}

// MARK: - Windows

/// The sliding window of a 2-D Conv or AveragePool, `auto_pad` resolved to explicit pads.
struct Window2D: Equatable, Sendable {
  var kernel: [Int]
  var strides: [Int]
  var dilations: [Int]
  /// Begins, then ends: [top, left, bottom, right].
  var pads: [Int]
  var group: Int

  /// Reads the window of `node` for a kernel of extent `kernel` over an input of spatial size
  /// `input`; nil when an attribute is malformed, `ceil_mode` is set, or `auto_pad` is unknown.
  static func read(_ node: Node, kernel: [Int], input: [Int]) -> Window2D? {
    guard kernel.count == 2, input.count == 2 else { return nil }
    if let shape = node.attribute("kernel_shape"), shape.ints.flatMap(small) != kernel { return nil }
    guard let strides = ints(node, "strides", count: 2, default: 1), strides.allSatisfy({ $0 >= 1 }),
      let dilations = ints(node, "dilations", count: 2, default: 1), dilations.allSatisfy({ $0 >= 1 }),
      var pads = ints(node, "pads", count: 4, default: 0), pads.allSatisfy({ $0 >= 0 }),
      (node.attribute("ceil_mode")?.int ?? 0) == 0
    else { return nil }
    let group = node.attribute("group")?.int ?? 1
    guard group >= 1, group <= 1 << 20 else { return nil }
    switch node.attribute("auto_pad")?.string ?? "NOTSET" {
    case "NOTSET", "": break
    case "VALID": pads = [0, 0, 0, 0]
    case let mode where mode == "SAME_UPPER" || mode == "SAME_LOWER":
      for axis in 0..<2 {
        let out = (input[axis] + strides[axis] - 1) / strides[axis]
        let span = dilations[axis] * (kernel[axis] - 1) + 1
        let total = max(0, (out - 1) * strides[axis] + span - input[axis])
        let begin = mode == "SAME_UPPER" ? total / 2 : total - total / 2
        pads[axis] = begin
        pads[axis + 2] = total - begin
      }
    default: return nil
    }
    return Window2D(kernel: kernel, strides: strides, dilations: dilations, pads: pads, group: Int(group))
  }

  /// The output's spatial size over an input of spatial size `input`, nil when the window does not fit.
  func outputSize(_ input: [Int]) -> [Int]? {
    var out: [Int] = []
    for axis in 0..<2 {
      let span = dilations[axis] * (kernel[axis] - 1) + 1
      let total = input[axis] + pads[axis] + pads[axis + 2] - span
      guard total >= 0 else { return nil }
      out.append(total / strides[axis] + 1)
    }
    return out
  }

  var hasPads: Bool { pads.contains { $0 != 0 } }
  var isDilated: Bool { dilations != [1, 1] }

  /// The Conv attributes that spell this window (auto_pad dropped, defaults left out).
  var convAttributes: [Attribute] {
    var list = [
      Attribute("kernel_shape", .ints(kernel.map(Int64.init))),
      Attribute("pads", .ints(pads.map(Int64.init))),
      Attribute("strides", .ints(strides.map(Int64.init))),
    ]
    if isDilated { list.append(Attribute("dilations", .ints(dilations.map(Int64.init)))) }
    if group != 1 { list.append(Attribute("group", .int(Int64(group)))) }
    return list.sorted { $0.name < $1.name }
  }

  /// "kernel 4×4 stride 4".
  var summary: String {
    let stride = strides[0] == strides[1] ? "\(strides[0])" : "\(strides[0])×\(strides[1])"
    return "kernel \(kernel[0])×\(kernel[1]) stride \(stride)"
  }

  private static func ints(_ node: Node, _ name: String, count: Int, default value: Int) -> [Int]? {
    guard let attribute = node.attribute(name) else { return Array(repeating: value, count: count) }
    guard let values = attribute.ints.flatMap(small), values.count == count else { return nil }
    return values
  }

  /// Attribute integers that are sane sizes (so that products of them cannot overflow).
  private static func small(_ values: [Int64]) -> [Int]? {
    guard values.allSatisfy({ abs($0) <= 1 << 20 }) else { return nil }
    return values.map { Int($0) }
  }
}

// MARK: - Layers as the patterns read them

/// A float32 2-D Conv with a constant weight (and bias) and a static input, read from the graph.
struct ConvLayer: Sendable {
  let node: Node
  let input: ValueID
  /// [M, C/g, kH, kW].
  let weight: Tensor
  let bias: ValueID?
  let window: Window2D
  /// Batch (1 when symbolic), channels, height, width.
  let batch: Int, channels: Int, spatial: [Int]
  let outputSpatial: [Int]
  var outChannels: Int { weight.shape[0] }
  var kernelChannels: Int { weight.shape[1] }

  init?(_ node: Node, in graph: Graph) {
    guard node.opType == OpType.conv, OpType.isDefaultDomain(node.domain), node.outputs.count == 1,
      node.inputs.count >= 2, node.inputs.count <= 3,
      let input = node.input(0), graph.elementType(of: input) == .float,
      let weight = graph.constant(node.input(1)), weight.dtype == .float, weight.shape.count == 4,
      weight.shape.allSatisfy({ $0 >= 1 }),
      let shape = graph.shape(of: input), shape.count == 4,
      let channels = shape[1].value, let h = shape[2].value, let w = shape[3].value
    else { return nil }
    let bias = node.inputs.count == 3 ? node.input(2) : nil
    if let bias {
      guard let b = graph.constant(bias), b.dtype == .float, b.shape == [weight.shape[0]] else { return nil }
    }
    guard let window = Window2D.read(node, kernel: Array(weight.shape[2...]), input: [h, w]),
      channels == weight.shape[1] * window.group, weight.shape[0] % window.group == 0,
      let out = window.outputSize([h, w])
    else { return nil }
    self.node = node
    self.input = input
    self.weight = weight
    self.bias = bias
    self.window = window
    self.batch = shape[0].value ?? 1
    self.channels = channels
    self.spatial = [h, w]
    self.outputSpatial = out
  }

  /// Multiply-accumulates of the whole layer.
  var macs: Double {
    StreamCostModel.product([batch] + weight.shape + outputSpatial)
  }
}

/// A float32 2-D AveragePool without pads, ceil mode or dilation, over a static input.
struct PoolLayer: Sendable {
  let node: Node
  let input: ValueID
  let window: Window2D
  let batch: Int, channels: Int, spatial: [Int]
  let outputSpatial: [Int]

  init?(_ node: Node, in graph: Graph) {
    guard node.opType == OpType.averagePool, OpType.isDefaultDomain(node.domain), node.outputs.count == 1,
      node.inputs.count == 1, let input = node.input(0), graph.elementType(of: input) == .float,
      let shape = graph.shape(of: input), shape.count == 4,
      let channels = shape[1].value, let h = shape[2].value, let w = shape[3].value,
      let kernel = node.attribute("kernel_shape")?.ints, kernel.count == 2, kernel.allSatisfy({ $0 >= 1 && $0 <= 1 << 20 }),
      node.attribute("group") == nil,
      let window = Window2D.read(node, kernel: kernel.map { Int($0) }, input: [h, w]),
      !window.hasPads, !window.isDilated,
      let out = window.outputSize([h, w])
    else { return nil }
    self.node = node
    self.input = input
    self.window = window
    self.batch = shape[0].value ?? 1
    self.channels = channels
    self.spatial = [h, w]
    self.outputSpatial = out
  }

  /// Additions of the whole pool, counted as MACs.
  var macs: Double {
    StreamCostModel.product([batch, channels] + window.kernel + outputSpatial)
  }
}
