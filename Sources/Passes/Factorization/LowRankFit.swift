import Linalg

/// The best rank-r approximations W' = A·B (A: d_in × r, B: r × d_out) of a layer's weight, at
/// every r from one SVD.
///
/// Weight-only: `W = U Σ Vᵀ`, `A = U_r Σ_r^½`, `B = Σ_r^½ V_rᵀ`, relative weight error
/// `√(Σ_{i≥r} σ_i²) / ‖W‖` (Eckart–Young).
///
/// Whitened (METHODS §5.1, with calibration rows X̂, Y): the loss `‖Y − X̂·W'‖²` splits into
/// `‖Y − X̂·W*‖² + ‖Lᵀ(W* − W')‖²` where `X̂ᵀX̂ + δI = L·Lᵀ` and `W* = W + (L·Lᵀ)⁻¹X̂ᵀ(Y − X̂·W)` is
/// the ridge regression of the targets pulled towards W (inputs come from the rewritten model,
/// targets from the original one). So `Lᵀ·W* = U Σ Vᵀ`, `A = L⁻ᵀ U_r Σ_r^½`, `B = Σ_r^½ V_rᵀ`, and
/// the output error at rank r is `√(‖Y − X̂W*‖² + Σ_{i≥r} σ_i²) / ‖Y‖`.
struct LowRankFit {
  let svd: SingularValueDecomposition
  /// What the SVD approximates before whitening: W* (whitened) or W.
  let target: Matrix
  /// L, for the whitened fit.
  let whitening: Matrix?
  /// ‖Y − X̂·W*‖² (whitened) or 0.
  let floor: Double
  /// ‖Y‖² (whitened) or ‖W‖².
  let scale: Double
  /// Tail sums: tail[r] = Σ_{i≥r} σ_i².
  private let tail: [Double]

  /// The largest d_in the whitened fit accepts (its Gram matrix is d_in²).
  static let maxWhitenedInputs = 4096

  /// A weight-only fit, or a whitened one when `statistics` has at least d_in rows (fewer leave
  /// XᵀX rank-deficient and the fit overfits them) and d_in is not too large.
  init(weight: Matrix, statistics: LayerStatistics?) throws {
    if let stats = statistics, stats.rows >= weight.rows, weight.rows <= Self.maxWhitenedInputs {
      let l = try stats.whitening()
      let residual = Self.difference(stats.targets, stats.inputs.multiplied(by: weight))
      let correction = try Matrix.choleskySolve(factor: l, stats.inputs.multiplied(by: residual, transposingSelf: true))
      let target = Self.sum(weight, correction)
      svd = try l.multiplied(by: target, transposingSelf: true).singularValueDecomposition()
      self.target = target
      whitening = l
      floor = pow2(stats.relative(stats.inputs.multiplied(by: target))) * stats.targetEnergy
      scale = stats.targetEnergy
    } else {
      svd = try weight.singularValueDecomposition()
      target = weight
      whitening = nil
      floor = 0
      scale = squaredNorm(weight.elements)
    }
    var sums = [Double](repeating: 0, count: svd.singularValues.count + 1)
    for i in svd.singularValues.indices.reversed() {
      sums[i] = sums[i + 1] + Double(svd.singularValues[i]) * Double(svd.singularValues[i])
    }
    tail = sums
  }

  var isWhitened: Bool { whitening != nil }

  /// The predicted relative error at rank r: the output error when whitened, else the weight error.
  func predictedError(rank r: Int) -> Double {
    let t = tail[min(max(r, 0), tail.count - 1)]
    return scale > 0 ? ((floor + t) / scale).squareRoot() : 0
  }

  /// The predicted relative error of any approximation W' (d_in × d_out) of the same layer:
  /// `√(floor + ‖Lᵀ(W* − W')‖²) / ‖Y‖` when whitened, else `‖W − W'‖ / ‖W‖`.
  func predictedError(of approximation: Matrix) -> Double {
    guard let l = whitening else { return relativeWeightError(target, approximation) }
    let d = l.multiplied(by: Self.difference(target, approximation), transposingSelf: true)
    return scale > 0 ? ((floor + squaredNorm(d.elements)) / scale).squareRoot() : 0
  }

  /// The factors at rank r.
  func factors(rank r: Int) throws -> (a: Matrix, b: Matrix) {
    let t = svd.truncated(rank: r)
    var us = t.u, vt = t.vt
    for (k, s) in t.singularValues.enumerated() {
      let root = Float(Double(s).squareRoot())
      for i in 0..<us.rows { us[i, k] *= root }
      for j in 0..<vt.columns { vt[k, j] *= root }
    }
    guard let l = whitening else { return (us, vt) }
    // L⁻ᵀ·M = (L·Lᵀ)⁻¹·(L·M).
    return (try Matrix.choleskySolve(factor: l, l.multiplied(by: us)), vt)
  }

  static func difference(_ a: Matrix, _ b: Matrix) -> Matrix {
    Matrix(rows: a.rows, columns: a.columns, elements: zip(a.elements, b.elements).map { $0 - $1 })
  }

  static func sum(_ a: Matrix, _ b: Matrix) -> Matrix {
    Matrix(rows: a.rows, columns: a.columns, elements: zip(a.elements, b.elements).map { $0 + $1 })
  }
}

/// ‖W − A·B‖ / ‖W‖.
func relativeWeightError(_ w: Matrix, a: Matrix, b: Matrix) -> Double {
  relativeWeightError(w, a.multiplied(by: b))
}

/// ‖W − W'‖ / ‖W‖.
func relativeWeightError(_ w: Matrix, _ approximation: Matrix) -> Double {
  var sum = 0.0
  for (x, y) in zip(w.elements, approximation.elements) { sum += Double(x - y) * Double(x - y) }
  let norm = squaredNorm(w.elements)
  return norm > 0 ? (sum / norm).squareRoot() : sum.squareRoot()
}

private func pow2(_ x: Double) -> Double { x * x }
