import Foundation
import Graph
import Linalg
import Testing

@testable import Passes

/// EVBMF's rank (Nakajima et al.'s analytic solution, METHODS §4.3) on matrices whose signal rank is
/// known: a rank-r matrix plus i.i.d. noise well below the signal.
@Suite struct EVBMFTests {
  /// U·diag(σ)·Vᵀ (orthonormal U, V from QR of seeded matrices) plus noise of standard deviation `noise`.
  static func matrix(rows: Int, columns: Int, signal: [Float], noise: Float, seed: UInt64) throws -> Matrix {
    var generator = SplitMix64(seed: seed)
    func gaussian() -> Float {
      let u1 = Double(generator.next() >> 11 + 1) / Double(1 << 53), u2 = Double(generator.next() >> 11) / Double(1 << 53)
      return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
    }
    let r = signal.count
    let a = try Matrix(rows: rows, columns: r, elements: (0..<rows * r).map { _ in gaussian() }).singularValueDecomposition().u
    let b = try Matrix(rows: columns, columns: r, elements: (0..<columns * r).map { _ in gaussian() }).singularValueDecomposition().u
    var y = Matrix(rows: rows, columns: columns)
    for i in 0..<rows {
      for j in 0..<columns {
        var v: Float = 0
        for k in 0..<r { v += a[i, k] * signal[k] * b[j, k] }
        y[i, j] = v + noise * gaussian()
      }
    }
    return y
  }

  @Test(arguments: [(40, 120), (120, 40), (64, 64)])
  func recoversTheSignalRank(rows: Int, columns: Int) throws {
    let signal: [Float] = [30, 26, 22, 18, 15, 12]
    let y = try Self.matrix(rows: rows, columns: columns, signal: signal, noise: 0.05, seed: 5)
    let values = try y.singularValueDecomposition().singularValues
    #expect(EVBMF.rank(singularValues: values, rows: rows, columns: columns) == signal.count)
  }

  /// Noisier cases, where EVBMF keeps fewer than the planted rank: singular values of a rank-10
  /// 64×64, a rank-8 100×50 and a rank-5 30×200 signal (σ 30 … 8) plus noise of standard deviation
  /// 1.0, 0.8 and 2.0, with the ranks an independent numpy implementation of the same formula
  /// (free energy minimized on a 4001-point log grid) selects: 6, 7 and 1.
  @Test func agreesWithAnIndependentImplementation() {
    let square: [Float] = [33.2396, 29.7402, 27.2698, 26.3699, 23.187, 21.8014, 18.9488, 16.4956, 15.0997, 14.1531, 13.3878, 13.1269, 13.0061, 12.3104, 12.1106, 11.8503, 11.2566, 11.0181, 10.6488, 10.3691, 10.1732, 10.0466, 9.77659, 9.21853, 9.14202, 8.73722, 8.53734, 8.31771, 8.15251, 7.81598, 7.31212, 7.15367, 6.90366, 6.55725, 6.37942, 6.34869, 5.80019, 5.45091, 5.30901, 5.11633, 5.07258, 5.01869, 4.65315, 4.51632, 4.36648, 4.17745, 3.94991, 3.64969, 3.43698, 3.29226, 2.78331, 2.57783, 2.2528, 2.23321, 1.83504, 1.79788, 1.7093, 1.31324, 1.10144, 0.876749, 0.700237, 0.380943, 0.143233, 0.057823]
    let tall: [Float] = [31.5691, 27.7482, 24.9175, 22.395, 20.7436, 17.6217, 15.3976, 13.2413, 12.151, 11.3364, 10.8971, 10.6079, 10.5024, 10.3434, 9.90431, 9.78284, 9.54795, 9.27655, 8.83265, 8.78588, 8.65174, 8.44552, 7.97808, 7.76457, 7.68562, 7.42346, 7.29946, 7.14592, 6.97182, 6.86645, 6.49885, 6.39784, 6.05054, 6.00539, 5.91774, 5.62703, 5.55973, 5.34909, 5.31903, 5.06909, 4.89159, 4.65391, 4.39059, 4.33074, 4.11766, 3.67748, 3.61201, 2.98913, 2.88036, 2.35612]
    let wide: [Float] = [46.5341, 39.3191, 37.2094, 35.8053, 35.4369, 34.5183, 34.0203, 33.5497, 32.5488, 31.8205, 31.2623, 29.9558, 29.7507, 28.1704, 27.8317, 27.4538, 27.0142, 26.2643, 25.8017, 25.5239, 24.6607, 24.3495, 23.8515, 23.5408, 22.8779, 21.7267, 21.0455, 20.4395, 18.9299, 18.1486]
    #expect(EVBMF.rank(singularValues: square, rows: 64, columns: 64) == 6)
    #expect(EVBMF.rank(singularValues: tall, rows: 100, columns: 50) == 7)
    #expect(EVBMF.rank(singularValues: wide, rows: 30, columns: 200) == 1)
  }

  @Test func pureNoiseKeepsAtMostOne() throws {
    let y = try Self.matrix(rows: 50, columns: 100, signal: [], noise: 1, seed: 9)
    let values = try y.singularValueDecomposition().singularValues
    #expect(EVBMF.rank(singularValues: values, rows: 50, columns: 100) <= 1)
  }

  @Test func zeroMatrixHasRankZero() {
    #expect(EVBMF.rank(singularValues: [0, 0, 0], rows: 3, columns: 5) == 0)
  }

  @Test func goldenSectionFindsAParabolasMinimum() {
    let x = EVBMF.goldenSectionMinimum(of: { ($0 - 0.3) * ($0 - 0.3) }, in: 0, 1)
    #expect(abs(x - 0.3) < 1e-6)
  }
}
