import Graph
import Linalg

/// Replaces a Gemm or MatMul weight by a sum of Kronecker products, computed factor by factor.
///
///     y = MatMul(x, W)          W : p × q  (d_in × d_out, y = x·W)
///  →  W ≈ Σ_{k<r} A_k ⊗ B_k     A_k : p1 × q1, B_k : p2 × q2, p = p1·p2, q = q1·q2
///
/// The fit is Van Loan–Pitsianis (METHODS §3.2): ‖W − Σ A_k⊗B_k‖ = ‖R(W) − Σ vec(A_k)vec(B_k)ᵀ‖
/// with R(W) the rearrangement whose rows are W's p2 × q2 blocks, so the best r-term sum is the
/// rank-r SVD of R(W) and its error the tail of R's singular values. Factor shapes come from the
/// divisors of p and q (the `splits` with the fewest parameters per term; the degenerate ones that
/// are plain low rank are left out); the budget (`--compression`, `--max-error`, or `terms`) picks
/// the split and the number of terms per layer.
///
/// The graph never forms W (METHODS §3.3). With X_n the input row as p1 × p2, Y_n = Σ A_kᵀ·X_n·B_k;
/// for x of rank L + 1 (B applied first; the A-first order is the mirror image, chosen when it
/// costs fewer MACs):
///
///     t = Reshape(x, [0…, p1, p2]);  t = MatMul(t, [B_0 … B_{r−1}])          [..., p1, r·q2]
///     t = Reshape(t, [0…, p1, r, q2]);  t = Transpose(t) [..., q2, r, p1];  Reshape [..., q2, r·p1]
///     t = MatMul(t, [A_0; …; A_{r−1}])  (the sum over k happens in this product)  [..., q2, q1]
///     y = Reshape(Transpose(t), [0…, q])                  (+ the Gemm's bias with an Add)
///
/// MACs per row r·min(p1·q2·(p2 + q1), p2·q1·(p1 + q2)) against p·q; parameters r·(p1·q1 + p2·q2).
///
/// Doping (`dope=K`, METHODS §3.5): the K residual entries E = W − W' with the largest |E_ij|
/// (times ‖x_i‖ with calibration) are added back exactly, as `MatMul(Gather(x, rows, axis −1), D)`
/// with D the |rows| × q block of those rows (zero elsewhere). ONNX has no sparse matrix, so this
/// costs |rows|·q parameters and MACs (≈ K·q when the entries fall in distinct rows), which the
/// budget counts; the `.tmf` format stores the same correction as CSR (2K numbers).
///
/// With calibration data the factors are refitted by alternating least squares on the layer's
/// inputs X̂ from the current model and outputs Y of the original (the output is linear in the A's
/// for fixed B's and the other way round), starting from the weight-only fit and keeping the best;
/// the allocation then weighs each candidate by its weight-only fit's output error on those rows.
/// Measured on a trained matrix (docs/passes.md): at equal parameters a Kronecker sum has twice
/// plain SVD's output error, and the ALS refit overfits few calibration rows and loses to whitened
/// SVD on held-out data: prefer `factorize-svd` unless the report shows otherwise for your model.
///
/// Conditions: the layers of `EligibleLayer` that are MatMul or Gemm, x of known rank, a Gemm
/// bias constant when beta ≠ 1; applied only when it saves both parameters and MACs.
struct FactorizeKronecker: Pass {
  static let name = "factorize-kronecker"
  static let summary = "Replace Gemm/MatMul weights by sums of Kronecker products (optionally doped); worse than SVD at equal size on trained weights"
  static let isExact = false
  static let isDefault = false
  static let preset: Preset? = nil  // --enable only: `thin` runs factorize-svd, the method that wins post-training (docs/passes.md)
  static let options = [
    PassOption("terms", .int, default: "0", "Kronecker terms per layer (0: chosen by the budget)"),
    PassOption("dope", .int, default: "0", "residual entries added back per layer as a sparse correction"),
    PassOption("splits", .int, default: "4", "factor shapes tried per layer (those with the fewest parameters)"),
    PassOption("iterations", .int, default: "8", "alternating least-squares rounds with calibration data"),
  ]

  let terms: Int, dope: Int, splits: Int, iterations: Int

  init(options: PassOptions) throws(PassOptionError) {
    terms = options.int("terms")
    dope = options.int("dope")
    splits = options.int("splits")
    iterations = options.int("iterations")
    guard terms >= 0, dope >= 0, splits >= 1, iterations >= 0 else {
      throw PassOptionError("factorize-kronecker: terms, dope and iterations must be ≥ 0 and splits ≥ 1")
    }
  }

  func run(_ rewriter: inout Rewriter) throws {
    rewriter.inferShapes()
    let graph = rewriter.graph
    try Factorization.run(
      &rewriter, pattern: "KroneckerSum", opTypes: [OpType.matMul, OpType.gemm], budget: terms > 0 ? .fixed : nil
    ) { layer, statistics in
      guard let lowering = KroneckerLowering(layer, in: graph) else { return [] }
      return try candidates(layer, lowering, statistics: statistics)
    }
  }

  /// Every (split, terms) that fits, with its weight error from the singular values of R(W); with
  /// calibration also the output error of the weight-only fit on the calibration rows (METHODS 5.1's
  /// whitened measure, an upper bound of what the ALS refit reaches), which the allocation then
  /// weighs instead of the weight error.
  private func candidates(_ layer: EligibleLayer, _ lowering: KroneckerLowering, statistics: LayerStatistics?) throws
    -> [Candidate]
  {
    let w = layer.matrix, norm = Double(w.frobeniusNorm)
    let whitened = statistics.flatMap { try? LowRankFit(weight: w, statistics: $0) }.flatMap { $0.isWhitened ? $0 : nil }
    var result: [Candidate] = []
    for split in KroneckerSplit.candidates(p: layer.inputs, q: layer.outputs, limit: splits) {
      let svd = try split.rearranged(w).singularValueDecomposition()
      let energy = svd.singularValues.map { Double($0) * Double($0) }
      let ladder = terms > 0 ? [terms] : Self.termLadder(upTo: split.maxTerms)
      for r in ladder where r <= split.maxTerms {
        let base = r * split.termParams, baseMACs = layer.positions * split.macsPerRow(terms: r)
        guard base < layer.params, baseMACs < layer.macs else { continue }
        var weightError = norm > 0 ? energy.dropFirst(r).reduce(0, +).squareRoot() / norm : 0
        var params = base, macs = baseMACs
        var outputError: Double?
        if dope > 0 || whitened != nil {
          let fit = KroneckerSum(nearestTo: svd, split: split, terms: r)
          var approx = fit.dense()
          if dope > 0, let d = KroneckerDoping(residual: residual(w, approx), count: dope, inputScale: nil) {
            d.add(to: &approx)
            weightError = norm > 0 ? Double(residual(w, approx).frobeniusNorm) / norm : 0
            params += d.params
            macs += layer.positions * d.params
          }
          outputError = whitened?.predictedError(of: approx)
        }
        let fitter = KroneckerFitter(layer: layer, svd: svd, split: split, terms: r, dope: dope, iterations: iterations)
        result.append(
          Candidate(
            method: dope > 0 ? "doped-kronecker" : "kronecker", detail: "\(split), \(r) term\(r == 1 ? "" : "s")",
            params: params, macs: macs, weightError: weightError, outputError: outputError,
            apply: { rewriter, statistics in try fitter.apply(lowering, &rewriter, statistics) }))
      }
    }
    // With a fixed number of terms the first candidate is taken: the split with the fewest parameters.
    return result.sorted { ($0.params, $0.weightError) < ($1.params, $1.weightError) }
  }

  /// 1, 2, 3, 4, 6, 8, 12, 16, 24, …: a geometric ladder of term counts.
  static func termLadder(upTo limit: Int) -> [Int] {
    var ladder: [Int] = [], r = 1
    while r <= limit {
      ladder.append(r)
      if r >= 2, r * 3 / 2 <= limit { ladder.append(r * 3 / 2) }
      r *= 2
    }
    return ladder
  }
}

/// W − W'.
private func residual(_ w: Matrix, _ approx: Matrix) -> Matrix {
  var e = w
  for i in e.elements.indices { e.elements[i] -= approx.elements[i] }
  return e
}

/// Fits one candidate (weight-only, or by ALS on calibration rows) and rewrites the layer.
private struct KroneckerFitter {
  let layer: EligibleLayer
  let svd: SingularValueDecomposition
  let split: KroneckerSplit
  let terms: Int, dope: Int, iterations: Int

  func apply(_ lowering: KroneckerLowering, _ rewriter: inout Rewriter, _ statistics: LayerStatistics?) throws
    -> Candidate.Outcome
  {
    var sum = KroneckerSum(nearestTo: svd, split: split, terms: terms)
    var metrics: [String: Double] = ["terms": Double(terms), "p1": Double(split.p1), "q1": Double(split.q1)]
    if let s = statistics, iterations > 0 {
      let start = KroneckerALS.residual(of: sum, inputs: s.inputs, targets: s.targets).frobeniusNorm
      let (fitted, error) = KroneckerALS.refit(sum, inputs: s.inputs, targets: s.targets, iterations: iterations)
      sum = fitted
      let yNorm = Double(s.targets.frobeniusNorm)
      metrics["fit_error_weight_fit"] = yNorm > 0 ? Double(start) / yNorm : 0
      metrics["fit_error_als"] = error
    }
    var approx = sum.dense()
    var doping: KroneckerDoping?
    if dope > 0 {
      let scale = statistics.map { calibrationColumnNorms($0.inputs) }
      doping = KroneckerDoping(residual: residual(layer.matrix, approx), count: dope, inputScale: scale)
      if let d = doping {
        d.add(to: &approx)
        metrics["doped_entries"] = Double(d.entries)
        metrics["doped_rows"] = Double(d.rows.count)
      }
    }
    try lowering.rewrite(sum, doping: doping, &rewriter)
    let norm = Double(layer.matrix.frobeniusNorm)
    let weightError = norm > 0 ? Double(residual(layer.matrix, approx).frobeniusNorm) / norm : 0
    let extra = doping?.params ?? 0
    var detail = "\(split), \(terms) term\(terms == 1 ? "" : "s")"
    if let d = doping { detail += ", \(d.entries) doped entries" }
    return Candidate.Outcome(
      detail: detail, params: sum.params + extra, macs: layer.positions * (split.macsPerRow(terms: terms) + extra),
      weightError: weightError, outputError: statistics?.relativeOutputError(of: approx), metrics: metrics, approximation: approx)
  }
}

/// ‖X̂[:, i]‖ for every input feature i.
func calibrationColumnNorms(_ x: Matrix) -> [Float] {
  var sums = [Double](repeating: 0, count: x.columns)
  for r in 0..<x.rows {
    for c in 0..<x.columns {
      let v = Double(x.elements[r * x.columns + c])
      sums[c] += v * v
    }
  }
  return sums.map { Float($0.squareRoot()) }
}
