import Graph
import Linalg

// The framework every factorization pass shares (factorize-svd, factorize-deepthin,
// factorize-kronecker, factorize-conv, prune): which layers are eligible, how a layer's weight
// reads as a matrix, what a candidate replacement is, how candidates are allocated to a budget
// (METHODS §4.5), and how the chosen ones are applied, measured and reported.
//
// API (stable; other passes build on it):
//
//   EligibleLayer                      a Gemm/MatMul/Conv with a constant float32 weight (not a
//     .all(in:opTypes:minParams:)      graph input), in topological order
//     .matrix                          W as d_in × d_out with y = x·W (+ bias): MatMul's B, Gemm's
//                                      alpha·B' (transB handled), a Conv's [M, C·k…] transposed
//     .inputs .outputs .params .macs .positions .label .shapeText .weightShape
//     .weightTensor(from:)             a d_in × d_out matrix back in the node's weight layout
//     .replaceWeight(with:_:)          points the node at a new weight value (node layout; Gemm
//                                      gets transB 0 and alpha 1, the matrix must be alpha·B')
//     .rewriteLowRank(a:b:_:)          x·A then ·B (two MatMuls, or a Conv to r channels then a
//                                      1×1 Conv); the bias stays on the second
//   LayerStatistics                    calibration rows of one layer: `inputs` X̂ (rows × d_in,
//                                      from the current model), `targets` Y (rows × d_out, the
//                                      bias-free outputs of the original model)
//     .collect(for:_:rowLimit:)        one calibration run for many layers (nil: no calibration)
//     .relativeOutputError(of:)        ‖Y − X̂·W'‖ / ‖Y‖
//     .gram(ridge:) .whitening()       XᵀX + δI and its Cholesky factor L (METHODS §5.1)
//   Candidate                          one way to replace a layer: method, detail, params, macs,
//                                      weight/output error (as measured for allocation), and
//                                      `apply(&rewriter, freshStatistics)` that rewrites the layer
//                                      (refitting on fresh statistics when given) → Outcome
//   FactorizationBudget                .fixed (each layer's first candidate), .compression(R),
//                                      .maxError(E); `.from(settings)` reads the CLI flags
//   allocate(candidates:params:budget:) → the chosen candidate index per layer (nil: unchanged)
//   candidateRanks(layer:multiple:)    ranks that save parameters and MACs, rounded
//   savesCost(params:macs:of:)         the "apply only when it saves" rule
//   Factorization.run(_:pattern:opTypes:requireMACSaving:candidates:)
//                                      the driver: find, calibrate, allocate, then apply layer by
//                                      layer in topological order, refitting each on inputs from
//                                      the already-rewritten model; each change records
//                                      params/macs before and after, weight_error, fit_error (on
//                                      the fitting rows), output_error (on the held-out rows).
//                                      Layers an earlier factorize-* or prune change made or
//                                      edited are left alone (no factorization of factors).

/// A layer a factorization pass may rewrite: `y = x·W (+ bias)` with a constant float32 weight.
///
/// Eligible: MatMul(x, B) with B 2-D; Gemm with transA 0 and B 2-D; Conv with group 1. The weight
/// must be an initializer no graph input overrides, and hold at least `minParams` elements.
struct EligibleLayer {
  enum Kind: Equatable {
    case matMul
    case gemm(transB: Bool, alpha: Float)
    /// A Conv with group 1; `kernel` is its spatial kernel shape.
    case conv(kernel: [Int])
  }

  let node: Node
  let kind: Kind
  /// The weight's value (input 1).
  let weight: ValueID
  /// The node's weight shape: [K, N], [N, K] (Gemm transB) or [M, C, k…].
  let weightShape: [Int]
  /// d_in × d_out, y = x·W.
  let matrix: Matrix
  /// Rows of x the weight multiplies per run (batch × tokens, N·Ho·Wo); symbolic dims count 1.
  let positions: Int
  let label: String

  var inputs: Int { matrix.rows }
  var outputs: Int { matrix.columns }
  var params: Int { matrix.rows * matrix.columns }
  var macs: Int { positions * params }
  var isConv: Bool { if case .conv = kind { return true } else { return false } }
  /// "512×256" for a linear layer, "64×32×3×3" for a Conv (the node's weight shape).
  var shapeText: String { weightShape.map(String.init).joined(separator: "×") }

  /// The eligible layers of `graph` among `opTypes`, in topological order.
  static func all(in graph: Graph, opTypes: Set<String>, minParams: Int) -> [EligibleLayer] {
    let order = graph.topologicalOrder() ?? graph.nodeIDs
    return order.compactMap { id in
      let node = graph[id]
      guard opTypes.contains(node.opType), let layer = at(node, in: graph), layer.params >= max(1, minParams) else {
        return nil
      }
      return layer
    }
  }

  /// The layer `node` computes, if eligible (any size).
  static func at(_ node: Node, in graph: Graph) -> EligibleLayer? {
    guard OpType.isDefaultDomain(node.domain), node.input(0) != nil, let output = node.output(0),
      node.outputs.count == 1, let w = node.input(1), let weight = graph.constant(w), weight.dtype == .float,
      let values = weight.floats, !values.isEmpty
    else { return nil }
    let s = weight.shape
    let kind: Kind, matrix: Matrix
    switch node.opType {
    case OpType.matMul:
      guard s.count == 2, node.inputs.count == 2 else { return nil }
      (kind, matrix) = (.matMul, Matrix(rows: s[0], columns: s[1], elements: values))
    case OpType.gemm:
      guard s.count == 2, graph.int("transA", of: node, default: 0) == 0 else { return nil }
      let transB = graph.int("transB", of: node, default: 0) != 0, alpha = node.attribute("alpha")?.float ?? 1
      guard alpha.isFinite, alpha != 0 else { return nil }
      var m = Matrix(rows: s[0], columns: s[1], elements: values)
      if transB { m = m.transposed }
      if alpha != 1 { m.elements = m.elements.map { $0 * alpha } }
      (kind, matrix) = (.gemm(transB: transB, alpha: alpha), m)
    case OpType.conv:
      guard s.count >= 3, graph.int("group", of: node, default: 1) == 1, s[0] > 0 else { return nil }
      let columns = values.count / s[0]
      (kind, matrix) = (.conv(kernel: Array(s.dropFirst(2))), Matrix(rows: s[0], columns: columns, elements: values).transposed)
    default:
      return nil
    }
    return EligibleLayer(
      node: node, kind: kind, weight: w, weightShape: s, matrix: matrix,
      positions: positions(of: output, outputs: matrix.columns, conv: node.opType == OpType.conv, in: graph),
      label: graph.label(node))
  }

  /// Output elements per output channel (1 when the shape is unknown).
  private static func positions(of output: ValueID, outputs: Int, conv: Bool, in graph: Graph) -> Int {
    guard let dims = graph.shape(of: output), !dims.isEmpty else { return 1 }
    var product = 1
    for (axis, d) in dims.enumerated() where axis != (conv ? 1 : dims.count - 1) {
      guard let v = d.value else { continue }  // symbolic dims count 1
      guard v >= 0, v < 1 << 24 else { return 1 }
      product *= max(v, 1)
    }
    return product
  }

  /// `m` (d_in × d_out) in the layout `replaceWeight` wants: [d_in, d_out] for MatMul and Gemm
  /// (transB 0, alpha 1), [M, C, k…] for a Conv.
  func weightTensor(from m: Matrix) -> Tensor {
    switch kind {
    case .matMul: return Tensor(floats: m.elements, shape: [m.rows, m.columns])
    case .gemm: return Tensor(floats: m.elements, shape: [m.rows, m.columns])  // transB 0, alpha 1
    case .conv(let kernel): return Tensor(floats: m.transposed.elements, shape: [m.columns, m.rows / kernel.reduce(1, *)] + kernel)
    }
  }

  /// Makes the node read `value` as its weight: for MatMul and Gemm a d_in × d_out matrix (Gemm
  /// gets transB 0 and alpha 1), for a Conv a tensor of the Conv's weight shape.
  func replaceWeight(with value: ValueID, _ rewriter: inout Rewriter) throws {
    rewriter.setInput(1, of: node.id, to: value)
    if case .gemm = kind {
      try rewriter.removeAttribute("transB", of: node.id)
      try rewriter.removeAttribute("alpha", of: node.id)
    }
  }

  /// Rewrites the layer as `x·A` then `·B` (A: d_in × r, B: r × d_out); the original node becomes
  /// the second factor and keeps its bias, name and output.
  ///
  ///     MatMul / Gemm:  h = MatMul(x, A);   y = MatMul(h, B) / Gemm(h, B, C)
  ///     Conv:           h = Conv(x, Aᵀ as [r, C, k…]) with the original strides, pads, dilations
  ///                     y = Conv(h, Bᵀ as [M, r, 1…], bias)
  @discardableResult
  func rewriteLowRank(a: Matrix, b: Matrix, _ rewriter: inout Rewriter) throws -> NodeID {
    let base = node.name.isEmpty ? rewriter.graph[weight].name : node.name
    let x = node.input(0)!, r = a.columns
    let first: NodeID
    switch kind {
    case .matMul, .gemm:
      let aValue = rewriter.addInitializer(base + "_u", Tensor(floats: a.elements, shape: [a.rows, r]))
      first = try rewriter.addNode(OpType.matMul, name: base + "_low", inputs: [x, aValue])
      let bValue = rewriter.addInitializer(base + "_v", Tensor(floats: b.elements, shape: [r, b.columns]))
      try replaceWeight(with: bValue, &rewriter)
    case .conv(let kernel):
      let channels = a.rows / kernel.reduce(1, *)
      let aValue = rewriter.addInitializer(base + "_u", Tensor(floats: a.transposed.elements, shape: [r, channels] + kernel))
      var attributes = node.attributes
      attributes.removeAll { $0.name == "group" }
      first = try rewriter.addNode(OpType.conv, name: base + "_low", inputs: [x, aValue], attributes: attributes)
      let ones = kernel.map { _ in 1 }
      let bValue = rewriter.addInitializer(base + "_v", Tensor(floats: b.transposed.elements, shape: [b.columns, r] + ones))
      rewriter.setInput(1, of: node.id, to: bValue)
      try rewriter.setAttributes(of: node.id, [Attribute("kernel_shape", .ints(ones.map(Int64.init)))])
    }
    rewriter.setInput(0, of: node.id, to: rewriter.graph[first].output(0))
    return first
  }
}

/// One way to replace one layer, as measured for the allocation.
struct Candidate {
  /// What a change reports after the rewrite.
  struct Outcome {
    /// "rank 32", "78×79 rank 3": what the report prints after the method.
    var detail: String
    var params: Int
    var macs: Int
    /// ‖W − W'‖ / ‖W‖.
    var weightError: Double
    /// ‖Y − X̂·W'‖ / ‖Y‖ on the fitting calibration rows (nil without calibration); the driver
    /// adds the same on the held-out rows from `approximation`.
    var outputError: Double?
    /// Further measurements ("rank", "aux_rows", …).
    var metrics: [String: Double] = [:]
    /// W' (d_in × d_out) as the rewritten layer computes it, for the driver's held-out error.
    var approximation: Matrix? = nil
  }

  /// "svd", "svd-whitened", "deepthin", "kronecker"…
  var method: String
  var detail: String
  var params: Int
  var macs: Int
  var weightError: Double
  var outputError: Double?
  /// Rewrites the layer (in an open change), refitting on `statistics` when given (inputs from
  /// the current model); returns what it did.
  var apply: (_ rewriter: inout Rewriter, _ statistics: LayerStatistics?) throws -> Outcome

  /// The error the allocation weighs: the output error when measured, else the weight error.
  var error: Double { outputError ?? weightError }
}

/// How much the factorized layers may keep.
enum FactorizationBudget: Equatable {
  /// Each layer takes its first candidate (an explicit rank option).
  case fixed
  /// Keep this fraction of the eligible layers' parameters overall (`--compression R`).
  case compression(Double)
  /// Each layer takes its smallest candidate whose error is at most E (`--max-error E`).
  case maxError(Double)

  /// The per-layer error target used when the user gave no budget.
  static let defaultMaxError = 0.05

  static func from(_ settings: ApproximationSettings) -> FactorizationBudget {
    if let r = settings.compression { return .compression(r) }
    return .maxError(settings.maxError ?? defaultMaxError)
  }
}

/// The candidate chosen for each layer (nil: leave it), for `budget`.
///
/// `candidates[l]` are layer l's options (any order) and `params[l]` its parameters as it is.
/// `.compression(R)`: start every layer at its cheapest candidate, then repeatedly take the
/// upgrade (a dearer candidate of one layer, or leaving it whole) with the largest reduction of
/// squared error per added parameter that still fits in R·Σ params (METHODS §4.5, Zhang's greedy).
func allocate(candidates: [[Candidate]], params: [Int], budget: FactorizationBudget) -> [Int?] {
  switch budget {
  case .fixed:
    return candidates.map { $0.isEmpty ? nil : 0 }
  case .maxError(let e):
    return candidates.map { list in
      list.indices.filter { list[$0].error <= e }.min { list[$0].params < list[$1].params }
    }
  case .compression(let r):
    // Per layer, a ladder of (params, squared error, candidate index or nil for "unchanged").
    let ladders: [[(params: Int, error: Double, index: Int?)]] = candidates.indices.map { l in
      paretoLadder(candidates[l].enumerated().map { ($0.element.params, $0.element.error * $0.element.error, $0.offset) }
        + [(params[l], 0, nil)])
    }
    var position = ladders.map { _ in 0 }
    var spent = ladders.reduce(0) { $0 + $1[0].params }
    let limit = Int(r * Double(params.reduce(0, +)))
    while true {
      var best: (layer: Int, step: Int, ratio: Double)?
      for (l, ladder) in ladders.enumerated() {
        let now = ladder[position[l]]
        for step in ladder.indices where step > position[l] {
          let extra = ladder[step].params - now.params
          guard spent + extra <= limit, extra > 0 else { continue }
          let ratio = (now.error - ladder[step].error) / Double(extra)
          if best == nil || ratio > best!.ratio { best = (l, step, ratio) }
        }
      }
      guard let b = best, b.ratio > 0 else { break }
      spent += ladders[b.layer][b.step].params - ladders[b.layer][position[b.layer]].params
      position[b.layer] = b.step
    }
    return ladders.indices.map { ladders[$0][position[$0]].index }
  }
}

/// The options sorted by parameters, keeping only those with less error than every cheaper one.
private func paretoLadder(_ options: [(params: Int, error: Double, index: Int?)]) -> [(params: Int, error: Double, index: Int?)] {
  var result: [(params: Int, error: Double, index: Int?)] = []
  for o in options.sorted(by: { ($0.params, $0.error) < ($1.params, $1.error) }) where o.error.isFinite {
    if let last = result.last, o.error >= last.error { continue }
    if let last = result.last, last.params == o.params { result.removeLast() }
    result.append(o)
  }
  return result
}

/// The ranks r at which a rank-r factorization (r·(d_in + d_out) parameters and MACs per
/// position) is cheaper than the layer: multiples of `multiple` below the break-even
/// d_in·d_out/(d_in + d_out), or every rank when no multiple is below it.
func candidateRanks(layer: EligibleLayer, multiple: Int) -> [Int] {
  let (m, n) = (layer.inputs, layer.outputs)
  let breakEven = (m * n - 1) / (m + n)  // largest r with r(m + n) < mn
  guard breakEven >= 1 else { return [] }
  let step = max(1, multiple) <= breakEven ? max(1, multiple) : 1
  return Array(stride(from: step, through: breakEven, by: step))
}

/// Whether a replacement with `params` parameters and `macs` MACs is cheaper than `layer`
/// (MACs only when `requireMACSaving`: DeepThin rebuilds its weight at run time and saves only
/// parameters).
func savesCost(params: Int, macs: Int, of layer: EligibleLayer, requireMACSaving: Bool = true) -> Bool {
  params < layer.params && (!requireMACSaving || macs < layer.macs)
}

/// The shared driver of the factorization passes.
enum Factorization {
  /// Finds the eligible layers among `opTypes`, measures their candidates (on calibration data
  /// when there is some), allocates the budget, and applies the chosen candidates in topological
  /// order, each in its own change named `pattern`. With calibration, each layer is refitted on
  /// inputs collected from the model as rewritten so far (targets from the original model). A
  /// rewrite that does not save parameters (and MACs, when `requireMACSaving`) is skipped.
  static func run(
    _ rewriter: inout Rewriter, pattern: String, opTypes: Set<String>, budget: FactorizationBudget? = nil,
    requireMACSaving: Bool = true,
    candidates: (EligibleLayer, LayerStatistics?) throws -> [Candidate]
  ) throws {
    rewriter.inferShapes()
    let settings = rewriter.approximation
    let done = factorizedOutputs(rewriter)
    let layers = EligibleLayer.all(in: rewriter.graph, opTypes: opTypes, minParams: settings.minParams).filter {
      !done.contains(rewriter.graph[$0.node.output(0)!].name)
    }
    guard !layers.isEmpty else { return }
    let statistics = try LayerStatistics.collect(for: layers, rewriter)
    // A layer whose fit fails (an SVD that does not converge…) gets no candidates.
    let options = layers.indices.map { i in
      ((try? candidates(layers[i], statistics?[i])) ?? []).filter {
        savesCost(params: $0.params, macs: $0.macs, of: layers[i], requireMACSaving: requireMACSaving)
      }
    }
    let chosen = allocate(candidates: options, params: layers.map(\.params), budget: budget ?? .from(settings))
    var rewritten = false
    for (i, layer) in layers.enumerated() {
      guard let c = chosen[i], rewriter.canRewrite, rewriter.graph.contains(layer.node.id) else { continue }
      // Inputs from the model rewritten so far, so earlier layers' errors are compensated.
      var fresh = rewritten ? try LayerStatistics.collect(for: [layer], rewriter)?.first ?? nil : statistics?[i]
      // The held-out rows the reported output error is measured on (inputs from the same model).
      if fresh != nil, let held = try LayerStatistics.collect(for: [layer], rewriter, heldOut: true)?.first ?? nil {
        fresh?.heldOutRows = (held.inputs, held.targets, held.outputEnergy)
      }
      rewriter.beginChange(pattern)
      do {
        let outcome = try options[i][c].apply(&rewriter, fresh)
        let metrics = report(outcome, of: layer, heldOut: fresh?.heldOut)
        let text = "\(layer.label) (\(layer.shapeText)) factorized by \(options[i][c].method), \(outcome.detail)"
        guard savesCost(params: outcome.params, macs: outcome.macs, of: layer, requireMACSaving: requireMACSaving) else {
          rewriter.skipChange(text, reason: "it would not save parameters and MACs", metrics: metrics)
          continue
        }
        rewriter.recordMetrics(metrics)
        rewriter.commitChange(text + ": \(layer.params) → \(outcome.params) parameters" + errorText(metrics))
        rewritten = true
      } catch {
        rewriter.rollBack(because: "\(layer.label): \(error)")
      }
    }
  }

  /// The first outputs of the nodes an earlier factorization (or prune) made or edited: their
  /// weights are factors already, and are not factorized again.
  static func factorizedOutputs(_ rewriter: Rewriter) -> Set<String> {
    var names = Set<String>()
    for change in rewriter.changes where change.pass.hasPrefix("factorize-") || change.pass == "prune" {
      for node in change.created + change.modified { names.insert(node.output) }
    }
    return names
  }

  /// The change's metrics. With calibration, `fit_error` is the layer's relative output error on
  /// the fitting rows (what the fit minimized, ‖Y − X̂W'‖ / ‖Y‖ with Y bias-free) and `output_error`
  /// the relative error of the layer's output tensor on the held-out rows (`held_out_rows` of
  /// them): the same residual over the norm of the output as the model holds it, bias included,
  /// which is what `rebirth verify --tensor` measures; on the fitting rows when there are no
  /// held-out samples (`held_out_rows` 0).
  static func report(_ o: Candidate.Outcome, of layer: EligibleLayer, heldOut: LayerStatistics?) -> [String: Double] {
    var metrics = o.metrics
    metrics["params_before"] = Double(layer.params)
    metrics["params_after"] = Double(o.params)
    metrics["macs_before"] = Double(layer.macs)
    metrics["macs_after"] = Double(o.macs)
    metrics["weight_error"] = o.weightError
    if let e = o.outputError {
      metrics["fit_error"] = e
      if let h = heldOut, let w = o.approximation, h.rows > 0 {
        metrics["output_error"] = h.relativeTensorError(of: w)
        metrics["held_out_rows"] = Double(h.rows)
      } else {
        metrics["output_error"] = e
        metrics["held_out_rows"] = 0
      }
    }
    return metrics
  }

  /// ", weight error 0.41, output error 0.12 on held-out rows (0.09 on the fitting rows)".
  static func errorText(_ metrics: [String: Double]) -> String {
    var text = ", weight error \(formatted(metrics["weight_error"] ?? .nan))"
    guard let e = metrics["output_error"], let fit = metrics["fit_error"] else { return text }
    if (metrics["held_out_rows"] ?? 0) > 0 {
      text += ", output error \(formatted(e)) on held-out rows (\(formatted(fit)) on the fitting rows)"
    } else {
      text += ", output error \(formatted(e)) on the fitting rows (no held-out samples)"
    }
    return text
  }

  private static func formatted(_ x: Double) -> String {
    let scaled = (x * 10000).rounded() / 10000
    return "\(scaled)"
  }
}
