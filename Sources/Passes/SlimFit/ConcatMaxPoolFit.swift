import Graph
import Runtime

/// A MaxPool after the channel Concat of convs (+activations), each conv refitted with the pool's
/// stride folded in: GoogLeNet's `pool3/3x3_s2` and `pool4/3x3_s2` after an Inception block.
///
///     y = MaxPool<k, s, pads q>(Concat<axis 1>([f₁](conv₁(x₁)), …, [fₙ](convₙ(xₙ))))
///       →  y ≈ Concat<axis 1>([f₁](conv₁′(x₁)), …, [fₙ](convₙ′(xₙ)))
///
/// Max pooling acts on each channel alone, so it distributes over a channel concat exactly:
/// `MaxPool(Concat(a, b)) = Concat(MaxPool(a), MaxPool(b))`. Each branch is then the
/// `conv-maxpool-fit` merge (composite or same kernel), fitted against its channels of the
/// original's y; the guard is on the MACs of all branches together (with the composite kernel a
/// 1×1 branch alone costs more merged: GoogLeNet's 1×1 branches do). The branches change together, as one rewrite measured against
/// the budget. Conditions: a Concat on axis 1 of a 4-D float value that only the pool reads and is
/// no graph output, and every Concat input the single-use output of a group-1 conv (+monotone
/// activations) that ``ConvMaxPoolFit`` would merge.
struct ConcatMaxPoolFit: FittedRewrite {
  static let name = "concat-maxpool-fit"
  static let rootOpTypes: Set<String> = [OpType.maxPool]
  var sameKernel = false

  struct Branch {
    let source: ActivatedConv
    let merged: Window2D
    /// The branch's first channel in the Concat.
    let offset: Int
  }

  struct Match {
    let pool: Node
    let concat: Node
    let poolWindow: Window2D
    let branches: [Branch]
    let macsBefore: Double, macsAfter: Double
  }

  /// The most branches a match takes.
  static let maxBranches = 16

  func match(_ node: Node, in graph: Graph) -> Match? {
    guard node.inputs.count == 1, node.outputs.count == 1, node.output(0) != nil,
      let joined = node.input(0), graph.hasSingleUse(joined), let concat = graph.producer(of: joined),
      concat.opType == OpType.concat, OpType.isDefaultDomain(concat.domain),
      let axis = concat.attribute("axis")?.int, axis == 1 || axis == -3,
      concat.inputs.count >= 2, concat.inputs.count <= Self.maxBranches
    else { return nil }
    var branches: [Branch] = [], offset = 0, before = 0.0, after = 0.0
    var window: Window2D?
    for input in concat.inputs {
      guard let source = ActivatedConv(feeding: input, in: graph) else { return nil }
      let c = source.conv
      if let first = branches.first?.source.conv {
        guard c.outputSpatial == first.outputSpatial, c.batch == first.batch else { return nil }
      } else {
        window = ConvMaxPoolFit.window(of: node, input: c.outputSpatial)
      }
      guard let pool = window, let merge = ConvMaxPoolFit.merge(c, pool: pool, sameKernel: sameKernel, saving: false)
      else { return nil }
      branches.append(Branch(source: source, merged: merge.window, offset: offset))
      offset += c.outChannels
      before += merge.macsBefore
      after += merge.macsAfter
    }
    guard let window, after < before else { return nil }
    return Match(pool: node, concat: concat, poolWindow: window, branches: branches, macsBefore: before, macsAfter: after)
  }

  func describe(_ m: Match, in graph: Graph) -> String {
    let convs = m.branches.map { graph.label($0.source.conv.node) }.joined(separator: ", ")
    return "\(graph.label(m.concat)) + \(graph.label(m.pool)) fitted into its \(m.branches.count) branch convs (\(convs)): "
      + StreamCostModel.describe(macsBefore: m.macsBefore, macsAfter: m.macsAfter)
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter, calibration: Calibration) throws -> [String: Double] {
    let graph = rewriter.graph
    guard let y = m.pool.output(0), let joined = m.concat.output(0) else { throw SlimFitError.shapes("the pool lost its output") }
    guard rewriter.original.graph.value(named: graph[y].name) != nil else { throw SlimFitError.missingValue(graph[y].name) }
    let inputs = Array(Set(m.branches.map { graph[$0.source.conv.input].name })).sorted()
    let threads = rewriter.approximation.threads
    /// Per branch, per sample: the branch conv's input and its channels of the original's y.
    func pairs(_ samples: [[String: NDArray]]) throws -> [[(NDArray, NDArray)]] {
      let x = try calibration.activations(of: inputs, in: rewriter.model, on: samples, threads: threads)
      let t = try calibration.activations(of: [graph[y].name], in: rewriter.original, on: samples, threads: threads)
      return try m.branches.map { branch in
        let index = inputs.firstIndex(of: graph[branch.source.conv.input].name)!
        return try zip(x, t).map { (x, t) in
          (x[index], try Self.channels(t[0], from: branch.offset, count: branch.source.conv.outChannels))
        }
      }
    }
    let fitting = try pairs(calibration.fitting), heldOut = try pairs(calibration.heldOut)
    var fits: [(LayerFit, FitResult)] = []
    for (k, branch) in m.branches.enumerated() {
      let fit = try ConvMaxPoolFit.layerFit(
        branch.source, pool: m.poolWindow, merged: branch.merged, sameKernel: sameKernel, in: graph)
      fits.append((fit, try fit.fit(fitting: fitting[k], heldOut: heldOut[k])))
    }
    guard case .tensor(let dtype, let shape?)? = graph[y].type, shape.count == 4 else {
      throw SlimFitError.shapes("the pool's output has no static shape")
    }
    for (branch, (fit, result)) in zip(m.branches, fits) {
      var branchShape = shape
      branchShape[1] = .value(branch.source.conv.outChannels)
      try branch.source.installWeights(
        fit, result, window: branch.merged.convAttributes, type: .tensor(dtype, shape: branchShape), &rewriter)
    }
    let name = graph[y].name
    rewriter.setType(graph[y].type, of: joined)
    rewriter.replaceAllUses(of: y, with: joined)
    rewriter.erase(m.pool.id)
    rewriter.rename(joined, to: name)
    let errors = fits.map(\.1.heldOutError), fittingErrors = fits.map(\.1.fittingError)
    return [
      "fit_error": errors.max() ?? 0, "fit_error_fitting": fittingErrors.max() ?? 0, "branches": Double(fits.count),
      "ridge_lambda": fits.map(\.1.lambda).max() ?? 0, "macs_before": m.macsBefore, "macs_after": m.macsAfter,
    ]
  }

  /// Channels `from ..< from + count` of a [N, C, H, W] float array.
  static func channels(_ a: NDArray, from: Int, count: Int) throws(SlimFitError) -> NDArray {
    guard a.dtype == .float, a.shape.count == 4, from >= 0, count >= 1, from + count <= a.shape[1] else {
      throw .shapes("target \(a.shape) has no channels \(from)..<\(from + count)")
    }
    let (n, c, plane) = (a.shape[0], a.shape[1], a.shape[2] * a.shape[3])
    let values = a.scalars(as: Float.self)
    var out = [Float]()
    out.reserveCapacity(n * count * plane)
    for b in 0..<n { out.append(contentsOf: values[((b * c + from) * plane)..<((b * c + from + count) * plane)]) }
    return NDArray(out, shape: [n, count, a.shape[2], a.shape[3]])
  }
}
