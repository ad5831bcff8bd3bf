#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import Graph

/// DeepRebirth's streaming slimming, approximate cases (METHODS 1.2, 1.9): the non-tensor layer
/// after a conv is deleted and the conv's weights and bias are refitted in closed form on
/// calibration activations so that it reproduces the deleted layer's output.
///
///     c = Conv<K, s, d, pads p>(x, W, B) [; a = f(c)]; y = LRN<size, α, β, bias>(a | c)
///       →  y ≈ [f](Conv<K, s, d, pads p>(x, W*, B*))
///     c = Conv<K1, s1, d1, pads p>(x, W, B) [; a = f(c)]; y = MaxPool<k, s, pads q>(a | c)
///       →  y ≈ [f](Conv<K = d1(K1−1)+1+(k−1)s1, stride s1·s, pads p + q·s1>(x, W*, B*))   kernel=composite
///       →  y ≈ [f](Conv<K1, d1, stride s1·s, pads p + (q−j)·s1 | least end pad>(x, W*, B*))  kernel=same
///
/// An LRN after a MaxPool after such a conv (GoogLeNet's `pool1/norm1`, where the pool merge is
/// over the budget) is moved before the pool and fitted into the conv (``ConvPoolLRNFit``).
///
/// A MaxPool after the channel Concat of such convs (an Inception block's output) is distributed
/// over the Concat (exact: max pooling is per channel) and merged into each branch conv the same
/// way, all branches as one rewrite (``ConcatMaxPoolFit``).
///
/// f is a chain of single-use elementwise activations that are monotone non-decreasing (Relu,
/// LeakyRelu with α ≥ 0, Max/Min with a scalar constant, Clip with constant bounds; ``MonotoneChain``),
/// kept after the fitted conv. For MaxPool this is exact algebra, MaxPool(f(c)) = f(MaxPool(c)),
/// so only the pooling is approximated; for LRN the target is the LRN's output and the merged
/// layer f(conv'(x)) is fitted to it.
///
/// W*, B* solve the ridge least squares of ``LayerFit`` against the original model's value of y
/// (inputs x from the model as rewritten so far, so errors do not pile up), in pre-activation
/// space (targets through f⁻¹: exact for LeakyRelu, clamp-aware for clamps, ReLU-aware for Relu),
/// the ridge pulling toward an initializer θ₀: for LRN the conv scaled by bias^−β (exact for LRN
/// with α = 0 and a positively homogeneous f: Relu, LeakyRelu); for MaxPool with the same-size
/// kernel (`kernel=same`, DeepRebirth's merge, the fewest MACs) the conv's own weights, sampling
/// the conv at the middle position j = ⌊(k−1)/2⌋ of each pool window; with the composite kernel
/// (`kernel=composite`) the exact average-pool merge (METHODS 1.7.2), which fits the samples at
/// least as well, at more MACs. `kernel=auto` (the default) tries the same-size kernel and, where
/// that merge is skipped (over the budget, say), the composite one. Chains (GoogLeNet's stem:
/// Conv, Relu, MaxPool, LRN) merge step by step.
///
/// The merged layer's last output takes the name of the value it stands in for (the pool's or the
/// LRN's output), so `rebirth verify --tensor` compares it with the original's; its other values
/// get fresh names (`_merged`).
///
/// Each rewrite is measured as it is applied: the model's output error on held-out calibration
/// samples is recorded, and a rewrite that takes it past `--max-error` (and is not brought back
/// within it by later fits) is undone and reported as skipped. Without calibration data nothing is rewritten (each site is reported as skipped).
/// Conditions: float32, 2-D, group 1, constant conv weights (not graph inputs), static shapes,
/// every intermediate read once and no graph output, MaxPool without dilation or indices output
/// (`ceil_mode` 1 becomes extra end pads), and (MaxPool) a merged conv with fewer MACs than the
/// conv and pool; with `kernel=same`, an output size that agrees with the pool's without negative
/// pads (otherwise the site is declined).
public struct StreamSlimFit: Pass {
  public static let name = "stream-slim-fit"
  public static let summary =
    "Merge LRN and MaxPool into the Conv (+monotone activations) before them, refitting its weights on calibration data (approximate)"
  public static let isExact = false
  public static let isDefault = false
  public static let preset: Preset? = .slim
  public static let options: [PassOption] = [
    PassOption(
      "kernel", .string, default: "auto",
      "MaxPool merge: same (the conv's kernel at stride s1*s, DeepRebirth's, fewest MACs), composite (kernel d1(K1-1)+1+(k-1)s1, best fit on the samples) or auto (same, composite where same is skipped)"
    )
  ]

  /// The merged kernels tried at each MaxPool, in order: the next one only where the one before
  /// it was skipped (over the budget, a failed fit, no saving).
  let sameKernel: [Bool]

  public init(options: PassOptions) throws(PassOptionError) {
    switch options.string("kernel") {
    case "auto": sameKernel = [true, false]
    case "composite": sameKernel = [false]
    case "same": sameKernel = [true]
    case let other: throw PassOptionError("option stream-slim-fit.kernel wants auto, same or composite, not '\(other)'")
    }
  }

  public func run(_ rewriter: inout Rewriter) throws {
    rewriter.inferShapes()
    rewriter.applyWithinBudget(
      sameKernel.map { ConvMaxPoolFit(sameKernel: $0) } + sameKernel.map { ConcatMaxPoolFit(sameKernel: $0) }
        + [ConvLRNFit(), ConvPoolLRNFit()])
  }
}

/// A group-1 Conv, optionally followed by a chain of monotone non-decreasing elementwise
/// activations (``MonotoneActivation``: Relu, LeakyRelu α ≥ 0, Max/Min with a scalar constant,
/// Clip with constant bounds), each reading the one before it alone: what a fitted merge replaces.
struct ActivatedConv: Sendable {
  let conv: ConvLayer
  /// The activation nodes, conv side first.
  let chain: [Node]
  let activation: MonotoneChain
  /// What the next layer reads: the last activation's output, or the conv's.
  let output: ValueID

  /// The longest chain looked at.
  static let maxChain = 8

  init?(feeding value: ValueID?, in graph: Graph) {
    guard let value, graph.hasSingleUse(value), var producer = graph.producer(of: value) else { return nil }
    var nodes: [Node] = [], steps: [MonotoneActivation] = []
    while producer.opType != OpType.conv || !OpType.isDefaultDomain(producer.domain) {
      // The activation's data input: the one operand that is not a constant.
      guard nodes.count < Self.maxChain, producer.outputs.count == 1,
        let input = producer.inputs.compactMap({ $0 }).first(where: { graph.constant($0) == nil }),
        graph.hasSingleUse(input), let step = MonotoneActivation(producer, reading: input, in: graph),
        let next = graph.producer(of: input)
      else { return nil }
      nodes.append(producer)
      steps.append(step)
      producer = next
    }
    guard let conv = ConvLayer(producer, in: graph), conv.window.group == 1 else { return nil }
    self.conv = conv
    chain = nodes.reversed()
    activation = MonotoneChain(steps: steps.reversed())
    output = value
  }

  /// "Conv c1 + LeakyRelu l1 + Max m1".
  func label(in graph: Graph) -> String {
    ([conv.node] + chain).map { graph.label($0) }.joined(separator: " + ")
  }

  /// Points the conv at fitted weights (and window), and every reader of `replaced` at the
  /// activated conv's output.
  func install(
    _ fit: LayerFit, _ result: FitResult, window: [Attribute]?, replacing replaced: ValueID, of removed: Node,
    _ rewriter: inout Rewriter
  ) throws {
    let replacedName = rewriter.graph[replaced].name
    try installWeights(fit, result, window: window, type: rewriter.graph[replaced].type, &rewriter)
    rewriter.replaceAllUses(of: replaced, with: output)
    rewriter.erase(removed.id)
    rewriter.rename(output, to: replacedName)
  }

  /// Points the conv at fitted weights (and window) and records `type` as the type of its output
  /// and its activations'. The merged layer's values are new quantities: the conv's and the inner
  /// activations' outputs get fresh names (`_merged`); ``install`` gives the last output the name
  /// of the value it stands in for, so a name the original model also has means the same there
  /// (`rebirth verify --tensor` relies on it).
  func installWeights(_ fit: LayerFit, _ result: FitResult, window: [Attribute]?, type: ValueType?, _ rewriter: inout Rewriter)
    throws
  {
    let graph = rewriter.graph
    guard let c = conv.node.output(0), let weightName = conv.node.input(1).map({ graph[$0].name }) else {
      throw SlimFitError.shapes("the conv lost its output")
    }
    let (weight, bias) = fit.tensors(result)
    let w = rewriter.addInitializer(weightName + "_fitted", weight)
    let b = rewriter.addInitializer(conv.bias.map { graph[$0].name + "_fitted" } ?? weightName + "_fitted_bias", bias)
    rewriter.setInputs(of: conv.node.id, [conv.input, w, b])
    if let window { try rewriter.setAttributes(of: conv.node.id, window) }
    rewriter.setType(type, of: c)
    for node in chain { if let r = node.output(0) { rewriter.setType(type, of: r) } }
    for value in [c] + chain.compactMap({ $0.output(0) }) where value != output && !graph[value].name.hasSuffix("_merged") {
      rewriter.rename(value, to: rewriter.graph.uniqueName(graph[value].name + "_merged"))
    }
  }
}

/// Conv (+activations) → LRN as one refitted Conv (+activations).
struct ConvLRNFit: FittedRewrite {
  static let name = "conv-lrn-fit"
  static let rootOpTypes: Set<String> = [OpType.lrn]

  struct Match {
    let source: ActivatedConv
    let lrn: Node
    /// bias^−β: LRN's gain for small activations, exact when α = 0.
    let gain: Double
  }

  func match(_ node: Node, in graph: Graph) -> Match? {
    guard let gain = Self.lrnGain(node, in: graph), let source = ActivatedConv(feeding: node.input(0), in: graph)
    else { return nil }
    return Match(source: source, lrn: node, gain: gain)
  }

  /// bias^−β of an LRN node a fit can take (one input and output, not float16, size ≥ 1, bias > 0).
  static func lrnGain(_ node: Node, in graph: Graph) -> Double? {
    guard node.inputs.count == 1, node.outputs.count == 1, let y = node.output(0),
      let size = node.attribute("size")?.int, size >= 1, graph.elementType(of: y) != .float16
    else { return nil }
    let beta = Double(node.attribute("beta")?.float ?? 0.75), bias = Double(node.attribute("bias")?.float ?? 1)
    guard bias > 0, beta.isFinite else { return nil }
    let gain = pow(bias, -beta)
    return gain.isFinite && gain > 0 ? gain : nil
  }

  func describe(_ m: Match, in graph: Graph) -> String {
    "\(m.source.label(in: graph)) + \(graph.label(m.lrn)) fitted into \(graph.label(m.source.conv.node))"
  }

  /// The fit of `source`'s conv in its own window, θ₀ the conv scaled by the LRN's `gain`.
  static func layerFit(_ source: ActivatedConv, gain: Double, in graph: Graph) throws -> LayerFit {
    let conv = source.conv
    guard let weight = Kernel4(conv.weight) else { throw SlimFitError.shapes("unreadable weight") }
    return LayerFit(
      window: conv.window, channels: conv.channels, outChannels: conv.outChannels, activation: source.activation,
      prior: LayerFit.prior(weight: weight, bias: conv.bias.flatMap { graph.constant($0)?.doubles }, scale: gain))
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter, calibration: Calibration) throws -> [String: Double] {
    let graph = rewriter.graph
    let conv = m.source.conv
    guard let y = m.lrn.output(0) else { throw SlimFitError.shapes("the LRN lost its output") }
    let fit = try Self.layerFit(m.source, gain: m.gain, in: graph)
    let result = try fit.fit(input: graph[conv.input].name, target: graph[y].name, rewriter, calibration)
    try m.source.install(fit, result, window: nil, replacing: y, of: m.lrn, &rewriter)
    return result.metrics
  }
}

/// Conv (+activations) → MaxPool as one strided, refitted Conv (+activations).
struct ConvMaxPoolFit: FittedRewrite {
  static let name = "conv-maxpool-fit"
  static let rootOpTypes: Set<String> = [OpType.maxPool]
  /// DeepRebirth's merge (the conv's own kernel at the new stride, prior the conv's weights)
  /// rather than the composite kernel.
  var sameKernel = false

  struct Match {
    let source: ActivatedConv
    let pool: Node
    let poolWindow: Window2D
    let merged: Window2D
    let macsBefore: Double, macsAfter: Double
  }

  func match(_ node: Node, in graph: Graph) -> Match? {
    guard node.inputs.count == 1, node.outputs.count == 1, node.output(0) != nil,
      let source = ActivatedConv(feeding: node.input(0), in: graph),
      let pool = Self.window(of: node, input: source.conv.outputSpatial),
      let merge = Self.merge(source.conv, pool: pool, sameKernel: sameKernel)
    else { return nil }
    return Match(
      source: source, pool: node, poolWindow: pool, merged: merge.window, macsBefore: merge.macsBefore,
      macsAfter: merge.macsAfter)
  }

  /// The window of `conv` with the pool `pool` merged into it (composite or same kernel), and the
  /// MACs of the conv and pool and of the merged conv; nil where the merged conv's output would
  /// not have the pool's size or (`saving`) it would not save MACs.
  static func merge(_ c: ConvLayer, pool: Window2D, sameKernel: Bool, saving: Bool = true) -> (
    window: Window2D, macsBefore: Double, macsAfter: Double
  )? {
    guard let pooled = pool.outputSize(c.outputSpatial) else { return nil }
    let conv = c.window
    let merged: Window2D
    if sameKernel {
      guard let window = sameKernelWindow(conv: conv, pool: pool, input: c.spatial, pooled: pooled) else { return nil }
      merged = window
    } else {
      merged = Window2D(
        kernel: (0..<2).map { conv.dilations[$0] * (conv.kernel[$0] - 1) + 1 + (pool.kernel[$0] - 1) * conv.strides[$0] },
        strides: (0..<2).map { conv.strides[$0] * pool.strides[$0] }, dilations: [1, 1],
        pads: (0..<4).map { conv.pads[$0] + pool.pads[$0] * conv.strides[$0 % 2] }, group: 1)
    }
    guard merged.outputSize(c.spatial) == pooled else { return nil }
    let macsBefore = c.macs + StreamCostModel.product([c.batch, c.outChannels] + pool.kernel + pooled)
    guard
      let macsAfter = StreamCostModel.convMACs(
        batch: c.batch, outChannels: c.outChannels, kernelChannels: c.kernelChannels, kernel: merged.kernel, output: pooled),
      macsAfter < macsBefore || !saving
    else { return nil }
    return (merged, macsBefore, macsAfter)
  }

  /// The fit of `source`'s conv with `merged` window standing in for it and the pool `pool`: θ₀
  /// the exact average-pool merge (composite kernel) or the conv's own weights (same kernel).
  static func layerFit(_ source: ActivatedConv, pool: Window2D, merged: Window2D, sameKernel: Bool, in graph: Graph) throws
    -> LayerFit
  {
    let conv = source.conv
    guard let weight = Kernel4(conv.weight) else { throw SlimFitError.shapes("unreadable weight") }
    let start = sameKernel ? weight : weight.boxed(pool.kernel, step: conv.window.strides, dilation: conv.window.dilations)
    return LayerFit(
      window: merged, channels: conv.channels, outChannels: conv.outChannels, activation: source.activation,
      prior: LayerFit.prior(weight: start, bias: conv.bias.flatMap { graph.constant($0)?.doubles }))
  }

  /// DeepRebirth's merged window: the conv's kernel and dilation at stride s1·s, placed at the
  /// middle conv position j = ⌊(k−1)/2⌋ of each pool window (begin pad p + (q − j)·s1, j lowered
  /// where that pad would be negative), the end pad the least that gives the pool's output size.
  /// Nil where the output cannot have the pool's size without negative pads.
  static func sameKernelWindow(conv: Window2D, pool: Window2D, input: [Int], pooled: [Int]) -> Window2D? {
    var pads = [0, 0, 0, 0]
    for axis in 0..<2 {
      let s1 = conv.strides[axis], p = conv.pads[axis], q = pool.pads[axis]
      let j = min((pool.kernel[axis] - 1) / 2, q + p / s1)
      pads[axis] = p + (q - j) * s1
      let extent = conv.dilations[axis] * (conv.kernel[axis] - 1) + 1
      pads[axis + 2] = max(0, (pooled[axis] - 1) * s1 * pool.strides[axis] + extent - input[axis] - pads[axis])
    }
    let window = Window2D(
      kernel: conv.kernel, strides: (0..<2).map { conv.strides[$0] * pool.strides[$0] }, dilations: conv.dilations,
      pads: pads, group: 1)
    return window.outputSize(input) == pooled ? window : nil
  }

  /// The MaxPool's window over an input of spatial size `input`, `ceil_mode` 1 (Caffe's pooling,
  /// GoogLeNet's) spelled as the extra end pads that give the same output size: the fit is
  /// approximate anyway, and the output extents are what must agree.
  static func window(of node: Node, input: [Int]) -> Window2D? {
    guard let kernel = node.attribute("kernel_shape")?.ints, kernel.count == 2,
      kernel.allSatisfy({ $0 >= 1 && $0 <= 64 }), (node.attribute("dilations")?.ints ?? [1, 1]) == [1, 1]
    else { return nil }
    let ceil = node.attribute("ceil_mode")?.int ?? 0
    guard ceil == 0 || ceil == 1, (node.attribute("auto_pad")?.string ?? "NOTSET") == "NOTSET" || ceil == 0 else { return nil }
    let k = kernel.map { Int($0) }
    guard ceil == 1 else { return Window2D.read(node, kernel: k, input: input) }
    let strides = node.attribute("strides")?.ints ?? [1, 1], pads = node.attribute("pads")?.ints ?? [0, 0, 0, 0]
    guard strides.count == 2, strides.allSatisfy({ $0 >= 1 && $0 <= 64 }),
      pads.count == 4, pads.allSatisfy({ $0 >= 0 && $0 <= 64 })
    else { return nil }
    var window = Window2D(
      kernel: k, strides: strides.map { Int($0) }, dilations: [1, 1], pads: pads.map { Int($0) }, group: 1)
    for axis in 0..<2 {
      let span = input[axis] + window.pads[axis] + window.pads[axis + 2] - k[axis]
      guard span >= 0 else { return nil }
      let s = window.strides[axis]
      var out = (span + s - 1) / s + 1
      // ONNX drops a last window that would start in the end padding.
      if (out - 1) * s >= input[axis] + window.pads[axis] { out -= 1 }
      window.pads[axis + 2] += max(0, (out - 1) * s + k[axis] - (input[axis] + window.pads[axis] + window.pads[axis + 2]))
    }
    return window
  }

  func describe(_ m: Match, in graph: Graph) -> String {
    "\(m.source.label(in: graph)) + \(graph.label(m.pool)) fitted into \(graph.label(m.source.conv.node)) "
      + "(\(m.merged.summary)): \(StreamCostModel.describe(macsBefore: m.macsBefore, macsAfter: m.macsAfter))"
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter, calibration: Calibration) throws -> [String: Double] {
    let graph = rewriter.graph
    let conv = m.source.conv
    guard let y = m.pool.output(0) else { throw SlimFitError.shapes("the pool lost its output") }
    let fit = try Self.layerFit(m.source, pool: m.poolWindow, merged: m.merged, sameKernel: sameKernel, in: graph)
    let result = try fit.fit(input: graph[conv.input].name, target: graph[y].name, rewriter, calibration)
    try m.source.install(fit, result, window: m.merged.convAttributes, replacing: y, of: m.pool, &rewriter)
    return result.metrics.merging(["macs_before": m.macsBefore, "macs_after": m.macsAfter]) { _, new in new }
  }
}
