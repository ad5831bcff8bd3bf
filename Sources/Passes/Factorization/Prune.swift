import Graph
import Linalg

/// Magnitude pruning of Gemm, MatMul and Conv weights to a target sparsity (Deep Compression's
/// first stage, METHODS §6, without the retraining).
///
///     y = x·W  →  y = x·(M ⊙ W')     M the mask of kept weights, W' their (refitted) values
///
/// Each weight w_ij (input feature i, output j of the framework's d_in × d_out matrix) is scored by
/// |w_ij|, or with calibration data by |w_ij|·‖x_i‖ (‖x_i‖ the norm of input feature i over the
/// calibration rows, floored at 1e-3 of the mean so a feature unseen in calibration is not free to
/// drop). The `sparsity` fraction with the lowest scores is zeroed, per layer (`scope=layer`) or
/// against one threshold over all eligible layers (`scope=global`).
///
/// With calibration (`refit`), each output column's kept weights are refitted by ridge least
/// squares on the layer's inputs X̂ (from the model rewritten so far) and the original outputs Y
/// (METHODS §5.3): w_K = (X̂_Kᵀ X̂_K + δI)⁻¹ X̂_Kᵀ y_j, which can only lower the calibration error
/// of that column. The cost is one Cholesky of |K| × |K| per output column. The report's
/// `output_error` is measured on the held-out calibration rows, `fit_error` on the fitting rows.
///
/// In ONNX the pruned weight stays dense (zeros in place), so the file does not shrink; the report
/// gives the sparsity and the errors. The `.tmf` writer stores such a weight as CSR when that is
/// smaller (below roughly 50% density for float32 values and 32-bit indices).
///
/// Conditions: the layers of `EligibleLayer` (constant float32 weight, not a graph input, at least
/// `--min-params` weights; Conv with group 1).
struct Prune: Pass {
  static let name = "prune"
  static let summary = "Zero the smallest weights of Gemm/MatMul/Conv (activation-weighted with calibration), refitting the rest"
  static let isExact = false
  static let isDefault = false
  static let preset: Preset? = nil  // --enable only: `thin` runs factorize-svd, the method that wins post-training (docs/passes.md)
  static let options = [
    PassOption("sparsity", .float, default: "0.5", "fraction of each layer's (or all layers') weights set to zero"),
    PassOption("scope", .string, default: "layer", "layer: the sparsity per layer; global: one threshold over all layers"),
    PassOption("refit", .bool, default: "true", "refit the kept weights by least squares on calibration data"),
  ]

  let sparsity: Double, global: Bool, refit: Bool

  init(options: PassOptions) throws(PassOptionError) {
    sparsity = options.float("sparsity")
    refit = options.bool("refit")
    let scope = options.string("scope")
    guard scope == "layer" || scope == "global" else { throw PassOptionError("prune.scope is 'layer' or 'global', not '\(scope)'") }
    global = scope == "global"
    guard sparsity >= 0, sparsity < 1 else { throw PassOptionError("prune.sparsity must be in [0, 1)") }
  }

  func run(_ rewriter: inout Rewriter) throws {
    guard sparsity > 0 else { return }
    rewriter.inferShapes()
    let layers = EligibleLayer.all(
      in: rewriter.graph, opTypes: [OpType.matMul, OpType.gemm, OpType.conv], minParams: rewriter.approximation.minParams)
    guard !layers.isEmpty else { return }
    let statistics = try LayerStatistics.collect(for: layers, rewriter)
    let scores = layers.indices.map { Self.scores(layers[$0].matrix, statistics?[$0]) }
    let masks = global ? Self.globalMasks(scores, sparsity: sparsity) : scores.map { Self.mask($0, count: Int(sparsity * Double($0.count))) }
    var rewritten = false
    for (i, layer) in layers.enumerated() where masks[i].contains(false) {
      guard rewriter.canRewrite, rewriter.graph.contains(layer.node.id) else { continue }
      let fresh = rewritten && statistics != nil ? try LayerStatistics.collect(for: [layer], rewriter)?.first ?? nil : statistics?[i]
      let held = fresh == nil ? nil : try LayerStatistics.collect(for: [layer], rewriter, heldOut: true)?.first ?? nil
      rewriter.beginChange("MagnitudePrune")
      var pruned = layer.matrix
      for k in pruned.elements.indices where !masks[i][k] { pruned.elements[k] = 0 }
      var metrics: [String: Double] = [:]
      if refit, let s = fresh {
        let before = s.relativeOutputError(of: pruned), candidate = Self.refitted(pruned, mask: masks[i], statistics: s)
        metrics["fit_error_unrefitted"] = before
        if s.relativeOutputError(of: candidate) < before { pruned = candidate }
      }
      let value = rewriter.addInitializer(rewriter.graph[layer.weight].name + "_pruned", layer.weightTensor(from: pruned))
      try layer.replaceWeight(with: value, &rewriter)
      let zeros = masks[i].lazy.filter { !$0 }.count
      let norm = Double(layer.matrix.frobeniusNorm)
      let weightError = norm > 0 ? Double(frobeniusDistance(layer.matrix, pruned)) / norm : 0
      metrics["sparsity"] = Double(zeros) / Double(layer.params)
      metrics["nonzeros"] = Double(pruned.elements.lazy.filter { $0 != 0 }.count)
      metrics["params_before"] = Double(layer.params)
      metrics["params_after"] = Double(layer.params)
      metrics["weight_error"] = weightError
      var text = "\(layer.label) (\(layer.shapeText)) pruned: \(zeros) of \(layer.params) weights zero"
      text += " (\(rounded(100 * Double(zeros) / Double(layer.params), 1))%), weight error \(rounded(weightError, 4))"
      if let s = fresh {
        // fit_error on the fitting rows (what the refit minimized), output_error on the held-out rows.
        let fit = s.relativeOutputError(of: pruned)
        metrics["fit_error"] = fit
        if let h = held, h.rows > 0 {
          let e = h.relativeTensorError(of: pruned)  // the output tensor's, bias included (as Factorization.report)
          metrics["output_error"] = e
          metrics["held_out_rows"] = Double(h.rows)
          text += ", output error \(rounded(e, 4)) on held-out rows (\(rounded(fit, 4)) on the fitting rows)"
        } else {
          metrics["output_error"] = fit
          metrics["held_out_rows"] = 0
          text += ", output error \(rounded(fit, 4)) on the fitting rows (no held-out samples)"
        }
      }
      rewriter.recordMetrics(metrics)
      rewriter.commitChange(text)
      rewritten = true
    }
  }

  /// |w_ij|, times the input feature's calibration norm when there is one.
  static func scores(_ w: Matrix, _ statistics: LayerStatistics?) -> [Float] {
    guard let s = statistics else { return w.elements.map(abs) }
    var norms = calibrationColumnNorms(s.inputs)
    let floor = 1e-3 * norms.reduce(0, +) / Float(max(norms.count, 1))
    norms = norms.map { max($0, floor) }
    return w.elements.indices.map { abs(w.elements[$0]) * norms[$0 / w.columns] }
  }

  /// Keeps all but the `count` lowest scores (ties broken by position).
  static func mask(_ scores: [Float], count: Int) -> [Bool] {
    var keep = [Bool](repeating: true, count: scores.count)
    for k in scores.indices.sorted(by: { (scores[$0], $0) < (scores[$1], $1) }).prefix(count) { keep[k] = false }
    return keep
  }

  /// One threshold over every layer: the lowest `sparsity` of all scores go.
  static func globalMasks(_ scores: [[Float]], sparsity: Double) -> [[Bool]] {
    let all = scores.flatMap { $0 }.sorted()
    let count = Int(sparsity * Double(all.count))
    guard count > 0 else { return scores.map { $0.map { _ in true } } }
    let threshold = all[count - 1]
    var ties = count - all.prefix(count).lazy.filter { $0 < threshold }.count
    return scores.map { layer in
      layer.map { s in
        if s < threshold { return false }
        if s == threshold, ties > 0 {
          ties -= 1
          return false
        }
        return true
      }
    }
  }

  /// Each column's kept weights refitted on the calibration rows (ridge, δ = 1e-5·trace/d_in).
  static func refitted(_ w: Matrix, mask: [Bool], statistics s: LayerStatistics) -> Matrix {
    let gram = s.gram(ridge: 1e-5)
    let xty = s.inputs.multiplied(by: s.targets, transposingSelf: true)
    var out = w
    for j in 0..<w.columns {
      let kept = (0..<w.rows).filter { mask[$0 * w.columns + j] }
      guard !kept.isEmpty else { continue }
      var g = Matrix(rows: kept.count, columns: kept.count), rhs = Matrix(rows: kept.count, columns: 1)
      for (a, i) in kept.enumerated() {
        for (b, k) in kept.enumerated() { g[a, b] = gram[i, k] }
        rhs[a, 0] = xty[i, j]
      }
      guard let solution = try? g.solvePositiveDefinite(rhs), solution.elements.allSatisfy(\.isFinite) else { continue }
      for (a, i) in kept.enumerated() { out[i, j] = solution[a, 0] }
    }
    return out
  }
}

/// `x` rounded to `digits` decimals, for report text.
private func rounded(_ x: Double, _ digits: Int) -> Double {
  var scale = 1.0
  for _ in 0..<digits { scale *= 10 }
  return (x * scale).rounded() / scale
}
