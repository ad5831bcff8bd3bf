import Foundation

/// Rank selection by empirical variational Bayesian matrix factorization (EVBMF: the global
/// analytic solution of Nakajima et al., 2013), as Kim et al. use it for Tucker-2 ranks (METHODS
/// §4.3). Data-free: it reads only the singular values of a matrix Y (L×M, L ≤ M after
/// transposing), estimates the noise variance σ² by minimizing the VB free energy over the bracket
/// the theory gives, and keeps the singular values above the threshold that σ² implies:
///
///     α = L/M,  τ̄ = 2.5129·√α,  x̄ = (1 + τ̄)(1 + α/τ̄)
///     x_h = s_h² / (M σ²),  τ(x) = ½(x − (1+α) + √((x − (1+α))² − 4α))
///     f(σ²) = Σ_{x_h ≤ x̄} (x_h − ln x_h) + Σ_{x_h > x̄} (x_h − τ(x_h) + ln((τ(x_h)+1)/x_h) + α ln(τ(x_h)/α + 1))
///             + residual/(M σ²) + (L − H) ln σ²
///     σ² ∈ [max(s_{e+1}²/(M x̄), mean(s_{e+1…}²)/M),  (Σ s² + residual)/(L M)],  e = min(⌈L/(1+α)⌉ − 1, H) − 1
///     rank = #{h : s_h > √(M σ² x̄)}
///
/// `residual` is ‖Y‖² − Σ s² when only H < L singular values are given (0 for a full SVD).
enum EVBMF {
  /// The rank EVBMF selects for a matrix of `rows` × `columns` with `singularValues` (descending).
  /// At least 1 when the matrix is not zero.
  static func rank(singularValues: [Float], rows: Int, columns: Int, residual: Double = 0) -> Int {
    // Exact zeros carry no information (and would make ln x_h infinite): the (L − H) term counts them.
    let s = singularValues.map(Double.init).filter { $0 > 0 }
    let (l, m) = (Double(min(rows, columns)), Double(max(rows, columns)))
    let h = s.count
    guard h > 0, l > 0, let largest = s.first, largest > 0 else { return 0 }
    let alpha = l / m
    let tauBar = 2.5129 * alpha.squareRoot()
    let xBar = (1 + tauBar) * (1 + alpha / tauBar)
    let squares = s.map { $0 * $0 }
    let upper = (squares.reduce(0, +) + residual) / (l * m)
    let e = min(Int((l / (1 + alpha)).rounded(.up)) - 1, h) - 1
    var lower = 0.0
    if e + 1 < h {
      let tail = squares[(e + 1)...]
      lower = max(squares[e + 1] / (m * xBar), tail.reduce(0, +) / Double(tail.count) / m)
    }
    if !(lower < upper) { lower = upper * 1e-6 }

    func tau(_ x: Double) -> Double {
      let b = x - (1 + alpha)
      return 0.5 * (b + max(b * b - 4 * alpha, 0).squareRoot())
    }
    func freeEnergy(_ sigma2: Double) -> Double {
      var f = residual / (m * sigma2) + (l - Double(h)) * Foundation.log(sigma2)
      for q in squares {
        let x = q / (m * sigma2)
        if x <= xBar {
          f += x - Foundation.log(x)
        } else {
          let t = tau(x)
          f += x - t + Foundation.log((t + 1) / x) + alpha * Foundation.log(t / alpha + 1)
        }
      }
      return f
    }
    let sigma2 = goldenSectionMinimum(of: freeEnergy, in: lower, upper)
    let threshold = (m * sigma2 * xBar).squareRoot()
    return max(1, s.filter { $0 > threshold }.count)
  }

  /// The minimizer of `f` on [a, b] by golden-section search (f unimodal there, as the free energy
  /// is on EVBMF's bracket; elsewhere a local minimum), to a relative width of 1e-10.
  static func goldenSectionMinimum(of f: (Double) -> Double, in a: Double, _ b: Double) -> Double {
    let ratio = (5.0.squareRoot() - 1) / 2
    var (lo, hi) = (a, b)
    var c = hi - ratio * (hi - lo), d = lo + ratio * (hi - lo)
    var (fc, fd) = (f(c), f(d))
    for _ in 0..<200 where hi - lo > 1e-10 * max(abs(hi), 1e-300) {
      if fc < fd {
        (hi, d, fd) = (d, c, fc)
        c = hi - ratio * (hi - lo)
        fc = f(c)
      } else {
        (lo, c, fc) = (c, d, fd)
        d = lo + ratio * (hi - lo)
        fd = f(d)
      }
    }
    return (lo + hi) / 2
  }
}
