import Graph

/// DeepRebirth's branch slimming, approximate case (METHODS 1.3, 1.9): an Inception pooling
/// branch becomes one conv on the block input, fitted in closed form on calibration data, which
/// `branch-slim` can then stack exactly with the block's other convs on that input.
///
///     p = MaxPool<k, stride 1, pads q>(x); y = Conv<1×1, stride 1, pads 0>(p, W, B)
///       →  y ≈ Conv<k, stride 1, pads q>(x, W*, B*)
///
/// W*, B* solve the ridge least squares of ``LayerFit`` against the original model's y (x from
/// the model as rewritten so far), the ridge pulling toward the exact average-pool merge
/// (METHODS 1.7.6: W₀[m, c, u, v] = W[m, c] / k²), the MaxPool read as an AveragePool. A Relu
/// after the conv stays where it is (the fit is of the pre-activation, which the original has).
/// The fitted conv costs more MACs than the pool and the 1×1 (C·k² against C + k² per output):
/// measured on the Caffe-style GoogLeNet (bench/slimming), the fitted pooling branches made the
/// model slower in onnxruntime and in rebirth's runtime alike (+0.53 GMACs, 0.88x in rebirth's
/// runtime at 5e-2), since merging the fitted k×k conv with the block's 1×1 siblings saves no MACs.
/// So the cost model refuses every site that adds MACs and reports it as skipped, with the MACs;
/// `--pass-option branch-slim-fit.force=true` fits them anyway (for a runtime where the branch
/// count, not the MACs, is what costs).
///
/// Each rewrite is measured and kept only within `--max-error`, as in `stream-slim-fit`; without
/// calibration data each site is reported as skipped. Conditions: float32, 2-D, a group-1 1×1
/// conv with constant weights, stride 1, no pads or dilation; a MaxPool with stride 1, no ceil
/// mode, dilation or indices output, whose output only the conv reads and is no graph output;
/// static shapes.
public struct BranchSlimFit: Pass {
  public static let name = "branch-slim-fit"
  public static let summary =
    "Replace an Inception pooling branch (MaxPool stride 1 → 1×1 Conv) by one Conv fitted on calibration data (approximate)"
  public static let isExact = false
  public static let isDefault = false
  public static let preset: Preset? = .slim
  public static let options: [PassOption] = [
    PassOption("force", .bool, default: "false", "fit pooling branches even where the fitted conv adds MACs (it always does)")
  ]

  let force: Bool

  public init(options: PassOptions) {
    force = options.bool("force")
  }

  public func run(_ rewriter: inout Rewriter) throws {
    rewriter.inferShapes()
    rewriter.applyWithinBudget([MaxPoolConvFit(force: force)])
  }
}

/// MaxPool (stride 1) → 1×1 Conv as one refitted k×k Conv.
struct MaxPoolConvFit: FittedRewrite {
  static let name = "maxpool-conv-fit"
  static let rootOpTypes: Set<String> = [OpType.conv]
  /// Fit even where the fitted conv adds MACs.
  var force = false

  struct Match {
    let conv: ConvLayer
    let pool: Node
    let poolInput: ValueID
    let merged: Window2D
    let macsBefore: Double, macsAfter: Double
  }

  func match(_ node: Node, in graph: Graph) -> Match? {
    guard let conv = ConvLayer(node, in: graph), conv.window.kernel == [1, 1], conv.window.strides == [1, 1],
      !conv.window.hasPads, !conv.window.isDilated, conv.window.group == 1,
      graph.hasSingleUse(conv.input), let pool = graph.producer(of: conv.input), pool.opType == OpType.maxPool,
      OpType.isDefaultDomain(pool.domain), pool.inputs.count == 1, pool.outputs.count == 1,
      let x = pool.input(0), graph.elementType(of: x) == .float,
      let shape = graph.shape(of: x), shape.count == 4, let h = shape[2].value, let w = shape[3].value,
      let kernel = pool.attribute("kernel_shape")?.ints, kernel.count == 2, kernel.allSatisfy({ $0 >= 1 && $0 <= 15 }),
      let window = Window2D.read(pool, kernel: kernel.map { Int($0) }, input: [h, w]),
      window.strides == [1, 1], !window.isDilated
    else { return nil }
    let merged = Window2D(kernel: window.kernel, strides: [1, 1], dilations: [1, 1], pads: window.pads, group: 1)
    guard merged.outputSize([h, w]) == conv.outputSpatial, conv.spatial == window.outputSize([h, w]) else { return nil }
    let macsBefore = conv.macs + StreamCostModel.product([conv.batch, conv.channels] + window.kernel + conv.outputSpatial)
    guard
      let macsAfter = StreamCostModel.convMACs(
        batch: conv.batch, outChannels: conv.outChannels, kernelChannels: conv.channels, kernel: merged.kernel,
        output: conv.outputSpatial)
    else { return nil }
    return Match(conv: conv, pool: pool, poolInput: x, merged: merged, macsBefore: macsBefore, macsAfter: macsAfter)
  }

  func describe(_ m: Match, in graph: Graph) -> String {
    "\(graph.label(m.pool)) + \(graph.label(m.conv.node)) fitted into \(graph.label(m.conv.node)) "
      + "(\(m.merged.summary)): \(StreamCostModel.describe(macsBefore: m.macsBefore, macsAfter: m.macsAfter))"
  }

  func costObjection(_ m: Match) -> String? {
    guard !force, m.macsAfter > m.macsBefore else { return nil }
    return "the fitted conv adds MACs (\(StreamCostModel.describe(macsBefore: m.macsBefore, macsAfter: m.macsAfter))); "
      + "--pass-option branch-slim-fit.force=true fits it anyway"
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter, calibration: Calibration) throws -> [String: Double] {
    let graph = rewriter.graph
    guard let weight = Kernel4(m.conv.weight), let y = m.conv.node.output(0),
      let weightName = m.conv.node.input(1).map({ graph[$0].name })
    else { throw SlimFitError.shapes("unreadable weight") }
    let average = weight.boxed(m.merged.kernel, step: [1, 1], dilation: [1, 1])
    let fit = LayerFit(
      window: m.merged, channels: m.conv.channels, outChannels: m.conv.outChannels, throughRelu: false,
      prior: LayerFit.prior(weight: average, bias: m.conv.bias.flatMap { graph.constant($0)?.doubles }))
    let result = try fit.fit(input: graph[m.poolInput].name, target: graph[y].name, rewriter, calibration)
    let (w, b) = fit.tensors(result)
    let newWeight = rewriter.addInitializer(weightName + "_fitted", w)
    let newBias = rewriter.addInitializer(
      m.conv.bias.map { graph[$0].name + "_fitted" } ?? weightName + "_fitted_bias", b)
    rewriter.setInputs(of: m.conv.node.id, [m.poolInput, newWeight, newBias])
    try rewriter.setAttributes(of: m.conv.node.id, m.merged.convAttributes)
    rewriter.erase(m.pool.id)
    return result.metrics.merging(["macs_before": m.macsBefore, "macs_after": m.macsAfter]) { _, new in new }
  }
}
