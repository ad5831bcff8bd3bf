import Graph
import Linalg

/// Stores a layer's weight as two small factors of a re-laid-out matrix (DeepThin, METHODS §2).
///
///     y = MatMul(x, W)     W: m×n    →   p = MatMul(X_f, W_f)              X_f: m'×r, W_f: r×n'
///                                        f = Reshape(p, [-1]); f = Slice(f, [0], [m·n])  (if padded)
///                                        W' = Reshape(f, [m, n]);  y = MatMul(x, W')
///    (plain layout m' = m:                   y = MatMul(MatMul(x, A), B), as factorize-svd)
///
/// W's elements in row-major order fill an auxiliary m'×n' matrix (m'·n' ≥ m·n, the rest
/// padding); its best rank-r approximation X_f·W_f (truncated SVD, with hard-impute rounds for the
/// padding) rebuilds W. A near-square layout whose n' shares no factor above 2 with n makes the
/// rebuilt W of full rank, unlike plain low rank; the plain layout (m, n) is always a candidate,
/// so at equal parameters the choice is never worse than plain SVD by the measure the allocation
/// uses. Gemm (weight alpha·B', then transB 0 and alpha 1) and Conv (the [M, C, k…] weight) are
/// laid out the same way.
///
/// With calibration data the plain layout is fitted by whitened SVD (so it equals factorize-svd's
/// fit); near-square layouts start from the weight-only hard-impute fit and are refitted by
/// alternating least squares on the layer's output error (`DeepThinALS`, `iterations` rounds), the
/// refit kept only when it also beats the start on the held-out calibration rows.
///
/// The plain layout is plain low rank and is written as factorize-svd writes it: two thin layers
/// (`MatMul(MatMul(x, A), B)`, or a Conv to r channels and a 1×1 Conv), r·(d_in + d_out) MACs per
/// row instead of d_in·d_out, so it runs faster than the layer it replaces.
///
/// Honest limits: a near-square layout's weight is rebuilt at run time (r·m'·n' MACs more per run,
/// unless a runtime folds the constant MatMul): its gain is file size, not speed. Measured on MiniLM-L6 (docs/passes.md):
/// ALS cuts a near-square layout's held-out layer error from about 0.6 (hard impute) to 0.15-0.45,
/// but whitened SVD of the plain layout stays better at equal parameters (e.g. a 384×384 attention
/// layer: 0.17 for DeepThin 404×365 rank 96 against 0.12 for plain rank 96), so `layout=auto` keeps
/// choosing the plain layout and `layout=square` loses to factorize-svd (mean cosine 0.72 against
/// 0.89 at 25%). The allocation also judges near-square candidates by their hard-impute error, before
/// ALS. The summary says so.
public struct FactorizeDeepThin: Pass {
  public static let name = "factorize-deepthin"
  public static let summary =
    "Store large layers' weights as DeepThin factors of a re-laid-out matrix (near-square layouts save file size, not run time; post-training no better than factorize-svd, even with its calibration-aware fit)"
  public static let isExact = false
  public static let isDefault = false
  public static let preset: Preset? = nil  // --enable only: `thin` runs factorize-svd, the method that wins post-training (docs/passes.md)
  public static let options: [PassOption] = [
    PassOption("rank", .int, default: "0", "the rank of every factorized layer's layout (0: from the budget)"),
    PassOption("layout", .string, default: "auto", "auto (the best of plain and near-square), plain, or square"),
    PassOption("iterations", .int, default: "4", "alternating least-squares rounds for near-square layouts with calibration data"),
  ]

  let rank: Int
  let layout: String
  let iterations: Int

  public init(options: PassOptions) throws(PassOptionError) {
    rank = options.int("rank")
    layout = options.string("layout")
    iterations = options.int("iterations")
    guard rank >= 0 else { throw PassOptionError("factorize-deepthin.rank must be 0 or more") }
    guard iterations >= 0 else { throw PassOptionError("factorize-deepthin.iterations must be 0 or more") }
    guard ["auto", "plain", "square"].contains(layout) else {
      throw PassOptionError("factorize-deepthin.layout is auto, plain or square, not '\(layout)'")
    }
  }

  public func run(_ rewriter: inout Rewriter) throws {
    let multiple = rewriter.approximation.rankMultiple
    try Factorization.run(
      &rewriter, pattern: "deepthin", opTypes: [OpType.matMul, OpType.gemm, OpType.conv], budget: rank > 0 ? .fixed : nil,
      requireMACSaving: false
    ) { layer, statistics in
      try candidates(for: layer, statistics: statistics, multiple: multiple)
    }
  }

  /// The layouts to try for `layer`'s node-layout weight.
  func layouts(for layer: EligibleLayer) -> [DeepThinLayout] {
    let rows = layer.weightShape[0], count = layer.params
    let all = DeepThinLayout.candidates(rows: rows, columns: count / rows)
    switch layout {
    case "plain": return [all[0]]
    case "square": return all.count > 1 ? [all[1]] : []
    default: return all
    }
  }

  func candidates(for layer: EligibleLayer, statistics: LayerStatistics?, multiple: Int) throws -> [Candidate] {
    let flat = layer.weightTensor(from: layer.matrix).floats ?? []
    let fit = try LowRankFit(weight: layer.matrix, statistics: statistics)
    var result: [Candidate] = []
    for shape in layouts(for: layer) {
      let ranks = rank > 0 ? [rank] : deepThinRanks(shape, multiple: multiple, calibrated: fit.isWhitened)
      guard !ranks.isEmpty else { continue }
      let plain = shape.rows == layer.weightShape[0]
      let errors = fit.isWhitened || plain ? [] : try shape.truncationErrors(of: flat)
      for r in ranks {
        let error: Double
        if plain { error = fit.predictedError(rank: r) } else if fit.isWhitened {
          let (x, w) = try shape.factors(of: flat, rank: r, rounds: 0)
          error = fit.predictedError(of: layer.matrix(fromNodeLayout: shape.rebuild(x: x, w: w)))
        } else { error = errors[min(r, errors.count - 1)] }
        result.append(candidate(layer, shape, rank: r, error: error, fit: fit, statistics: statistics))
      }
    }
    return result
  }

  /// Ranks in multiples that save parameters, at most 16 of them per layout.
  private func deepThinRanks(_ shape: DeepThinLayout, multiple: Int, calibrated: Bool) -> [Int] {
    let maxRank = (shape.count - 1) / (shape.rows + shape.columns)
    guard maxRank >= 1 else { return [] }
    var step = max(1, multiple) <= maxRank ? max(1, multiple) : 1
    while maxRank / step > 16 { step += max(1, multiple) }
    return Array(stride(from: step, through: maxRank, by: step))
  }

  private func candidate(
    _ layer: EligibleLayer, _ shape: DeepThinLayout, rank r: Int, error: Double, fit: LowRankFit, statistics: LayerStatistics?
  ) -> Candidate {
    let plain = shape.rows == layer.weightShape[0]
    let detail = "\(shape.rows)×\(shape.columns) rank \(r)" + (plain ? " (plain layout)" : "")
    // The plain layout runs as two thin layers (x·A·B); a near-square one rebuilds W each run.
    let params = shape.params(rank: r)
    let macs = plain ? layer.positions * r * (layer.inputs + layer.outputs) : layer.macs + r * shape.rows * shape.columns
    return Candidate(
      method: "deepthin", detail: detail, params: params, macs: macs, weightError: fit.isWhitened ? .nan : error,
      outputError: fit.isWhitened ? error : nil
    ) { rewriter, fresh in
      let stats = fresh ?? statistics
      if plain {
        let (a, b) = try plainFactors(layer, rank: r, statistics: fresh, fit: fit)
        let approximation = a.multiplied(by: b)
        try layer.rewriteLowRank(a: a, b: b, &rewriter)
        return Candidate.Outcome(
          detail: detail, params: params, macs: macs, weightError: relativeWeightError(layer.matrix, approximation),
          outputError: stats?.relativeOutputError(of: approximation),
          metrics: ["rank": Double(r), "layout_rows": Double(shape.rows), "layout_columns": Double(shape.columns)],
          approximation: approximation)
      }
      var (x, w) = try shape.factors(of: layer.weightTensor(from: layer.matrix).floats ?? [], rank: r)
      var metrics = ["rank": Double(r), "layout_rows": Double(shape.rows), "layout_columns": Double(shape.columns)]
      if !plain, let s = stats { (x, w) = refitted(layer, shape, x: x, w: w, statistics: s, metrics: &metrics) }
      let approximation = layer.matrix(fromNodeLayout: shape.rebuild(x: x, w: w))
      try lower(layer, shape, x: x, w: w, &rewriter)
      return Candidate.Outcome(
        detail: detail, params: params, macs: macs, weightError: relativeWeightError(layer.matrix, approximation),
        outputError: stats?.relativeOutputError(of: approximation), metrics: metrics, approximation: approximation)
    }
  }

  /// The near-square factors refitted by alternating least squares on the calibration rows
  /// (`DeepThinALS`), starting from the weight-only hard-impute fit: the round with the lowest
  /// fitting-row error is kept, and only when it beats the start on the held-out rows too (on the
  /// fitting rows when there are none). Records `fit_error_hard_impute`, `fit_error_als` (fitting
  /// rows), `held_out_error_hard_impute`, `held_out_error_als` and `als` (1 kept, 0 not, −1 too
  /// large to run: `DeepThinALS.maxRoundCost`).
  private func refitted(
    _ layer: EligibleLayer, _ shape: DeepThinLayout, x: Matrix, w: Matrix, statistics s: LayerStatistics,
    metrics: inout [String: Double]
  ) -> (Matrix, Matrix) {
    guard iterations > 0, s.rows > 0 else { return (x, w) }
    guard DeepThinALS.affordable(layout: shape, rank: x.columns, inputs: layer.inputs, outputs: layer.outputs) else {
      metrics["als"] = -1
      return (x, w)
    }
    let als = DeepThinALS(layout: shape, weight: layer.matrix, statistics: s, outputMajor: layer.isConv)
    let fitted = als.refit(x: x, w: w, iterations: iterations) { s.relativeOutputError(of: $0) }
    metrics["fit_error_hard_impute"] = fitted.startError
    metrics["fit_error_als"] = fitted.error
    var keep = fitted.error < fitted.startError
    if keep, let held = s.heldOut {
      let before = held.relativeOutputError(of: als.weight(x: x, w: w))
      let after = held.relativeOutputError(of: als.weight(x: fitted.x, w: fitted.w))
      metrics["held_out_error_hard_impute"] = before
      metrics["held_out_error_als"] = after
      keep = after < before
    }
    metrics["als"] = keep ? 1 : 0
    return keep ? (fitted.x, fitted.w) : (x, w)
  }

  /// The plain layout's factors W' = A·B (A: d_in × r, B: r × d_out): the (whitened) low-rank fit,
  /// refitted on `fresh` statistics when there are some.
  private func plainFactors(_ layer: EligibleLayer, rank r: Int, statistics fresh: LayerStatistics?, fit: LowRankFit) throws
    -> (a: Matrix, b: Matrix)
  {
    let refit = fresh != nil && fit.isWhitened ? try LowRankFit(weight: layer.matrix, statistics: fresh) : fit
    return try refit.factors(rank: r)
  }

  /// Rewrites the layer to read the weight rebuilt from the factors.
  private func lower(_ layer: EligibleLayer, _ shape: DeepThinLayout, x: Matrix, w: Matrix, _ rewriter: inout Rewriter) throws {
    let base = layer.node.name.isEmpty ? rewriter.graph[layer.weight].name : layer.node.name
    let xf = rewriter.addInitializer(base + "_xf", Tensor(floats: x.elements, shape: [x.rows, x.columns]))
    let wf = rewriter.addInitializer(base + "_wf", Tensor(floats: w.elements, shape: [w.rows, w.columns]))
    let product = try rewriter.addNode(OpType.matMul, name: base + "_deepthin", inputs: [xf, wf])
    var flat = rewriter.graph[product].output(0)!
    if shape.padding > 0 {
      let minusOne = rewriter.addInitializer(base + "_flat", Tensor(int64s: [-1], shape: [1]))
      let reshape = try rewriter.addNode(OpType.reshape, name: base + "_flatten", inputs: [flat, minusOne])
      let start = rewriter.addInitializer(base + "_start", Tensor(int64s: [0], shape: [1]))
      let end = rewriter.addInitializer(base + "_end", Tensor(int64s: [Int64(shape.count)], shape: [1]))
      let slice = try rewriter.addNode(OpType.slice, name: base + "_slice", inputs: [rewriter.graph[reshape].output(0)!, start, end])
      flat = rewriter.graph[slice].output(0)!
    }
    let target = layer.isConv ? layer.weightShape : [layer.inputs, layer.outputs]
    let shapeValue = rewriter.addInitializer(base + "_shape", Tensor(int64s: target.map(Int64.init), shape: [target.count]))
    let weight = try rewriter.addNode(OpType.reshape, name: base + "_weight", inputs: [flat, shapeValue])
    try layer.replaceWeight(with: rewriter.graph[weight].output(0)!, &rewriter)
  }
}

extension EligibleLayer {
  /// The d_in × d_out matrix of a flat weight in the node layout `weightTensor(from:)` gives.
  func matrix(fromNodeLayout flat: [Float]) -> Matrix {
    if isConv { return Matrix(rows: outputs, columns: inputs, elements: flat).transposed }
    return Matrix(rows: inputs, columns: outputs, elements: flat)
  }
}
