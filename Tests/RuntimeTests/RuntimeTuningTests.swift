import Graph
import Linalg
import Testing

@testable import Runtime

/// The fast paths added while tuning the runtime (vector pooling rows, sgemv for one-row products)
/// against direct computations, and the gaps closed with them (small integer dtypes, double Exp and
/// MatMul, pooling windows larger than the padded input).
@Suite struct RuntimeTuningTests {
  /// Max or average pooling over one 2-D plane by direct window scans (taps inside the input).
  private func directPool(
    _ x: [Float], h: Int, w: Int, k: Int, s: Int, pad: Int, max: Bool
  ) -> (values: [Float], oh: Int, ow: Int) {
    let oh = (h + 2 * pad - k) / s + 1
    let ow = (w + 2 * pad - k) / s + 1
    var out: [Float] = []
    for i in 0..<oh {
      for j in 0..<ow {
        var best = -Float.infinity
        var sum: Float = 0
        var n = 0
        for a in 0..<k {
          for b in 0..<k {
            let (r, c) = (i * s - pad + a, j * s - pad + b)
            if r < 0 || r >= h || c < 0 || c >= w { continue }
            best = Swift.max(best, x[r * w + c])
            sum += x[r * w + c]
            n += 1
          }
        }
        out.append(max ? best : sum / Float(n))
      }
    }
    return (out, oh, ow)
  }

  @Test(arguments: [
    (3, 1, 1, 7), (3, 2, 0, 37), (3, 2, 1, 40), (3, 1, 1, 33), (2, 2, 0, 35), (3, 2, 1, 17), (4, 2, 1, 41),
    (1, 2, 0, 34), (5, 1, 2, 29),
  ])
  func poolingMatchesDirectScan(k: Int, s: Int, pad: Int, width: Int) throws {
    let (h, w) = (9, width)
    let x = random([1, 2, h, w], seed: UInt64(31 * width + k))
    let values = x.scalars(as: Float.self)
    let attributes: [Attribute] = [
      .ints("kernel_shape", [k, k]), .ints("strides", [s, s]), .ints("pads", [pad, pad, pad, pad]),
    ]
    for isMax in [true, false] {
      let y = try run(isMax ? "MaxPool" : "AveragePool", [x], attributes: attributes)[0]
      var expected: [Float] = []
      var shape: [Int] = []
      for plane in 0..<2 {
        let r = directPool(Array(values[(plane * h * w)..<((plane + 1) * h * w)]), h: h, w: w, k: k, s: s, pad: pad, max: isMax)
        expected += r.values
        shape = [1, 2, r.oh, r.ow]
      }
      expectClose(y, expected, shape: shape)
    }
  }

  @Test func windowLargerThanThePaddedInputGivesAnEmptyAxisAsOnnxruntime() throws {
    // MaxPool 2×2/2 and AveragePool 3×2/3 on a height of 1 (the two rapidocr models): onnxruntime's
    // (int)(span / stride + 1) is 0 on that axis.
    let x = iota([1, 2, 1, 6])
    let max = try run("MaxPool", [x], attributes: [.ints("kernel_shape", [2, 2]), .ints("strides", [2, 2])])[0]
    #expect(max.shape == [1, 2, 0, 3])
    let average = try run("AveragePool", [x], attributes: [.ints("kernel_shape", [3, 2]), .ints("strides", [3, 2])])[0]
    #expect(average.shape == [1, 2, 0, 3])
    // With ceil_mode the axis keeps one window, over the taps inside: ceil(−1/2 + 1) = 1.
    let ceil = try run(
      "MaxPool", [x], attributes: [.ints("kernel_shape", [2, 2]), .ints("strides", [2, 2]), .int("ceil_mode", 1)])[0]
    expectClose(ceil, [1, 3, 5, 7, 9, 11], shape: [1, 2, 1, 3])
    // Past −stride it stays an error, as in onnxruntime (a negative extent).
    #expect(throws: RuntimeError.self) {
      try run("MaxPool", [x], attributes: [.ints("kernel_shape", [3, 1])])
    }
    // Conv keeps refusing it.
    #expect(throws: RuntimeError.self) {
      try run("Conv", [x, iota([1, 2, 2, 2])])
    }
  }

  @Test func maxPoolOnBytes() throws {
    let x = NDArray([UInt8](arrayLiteral: 1, 200, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 255, 16), shape: [1, 1, 4, 4])
    let y = try run("MaxPool", [x], attributes: [.ints("kernel_shape", [2, 2]), .ints("strides", [2, 2])])[0]
    #expect(y.dtype == .uint8)
    #expect(y.scalars(as: UInt8.self) == [200, 8, 14, 255])
    let signed = NDArray([Int8](arrayLiteral: -5, -3, -128, 127), shape: [1, 1, 1, 4])
    let z = try run("MaxPool", [signed], attributes: [.ints("kernel_shape", [1, 2]), .ints("strides", [1, 2])])[0]
    #expect(z.scalars(as: Int8.self) == [-3, 127])
  }

  @Test func smallIntegerArithmeticWraps() throws {
    let a = NDArray([UInt8](arrayLiteral: 250, 3, 7), shape: [3])
    let b = NDArray([UInt8](arrayLiteral: 10, 5, 2), shape: [3])
    #expect(try run("Add", [a, b])[0].scalars(as: UInt8.self) == [4, 8, 9])
    #expect(try run("Sub", [a, b])[0].scalars(as: UInt8.self) == [240, 254, 5])
    #expect(try run("Mul", [a, b])[0].scalars(as: UInt8.self) == [196, 15, 14])
    #expect(try run("Div", [a, b])[0].scalars(as: UInt8.self) == [25, 0, 3])
    #expect(try run("Max", [a, b])[0].scalars(as: UInt8.self) == [250, 5, 7])
    #expect(try run("Min", [a, b])[0].scalars(as: UInt8.self) == [10, 3, 2])
    let c = NDArray([Int8](arrayLiteral: -7, 100, 7), shape: [3])
    let d = NDArray([Int8](arrayLiteral: 2, 100, -2), shape: [1, 3])
    #expect(try run("Div", [c, d])[0].scalars(as: Int8.self) == [-3, 1, -3])
    #expect(try run("Add", [c, d])[0].scalars(as: Int8.self) == [-5, -56, 5])
    let e = NDArray([Int16](arrayLiteral: 1, 2), shape: [2])
    let f = NDArray([UInt16](arrayLiteral: 1, 2), shape: [2])
    let g = NDArray([UInt32](arrayLiteral: 1, 2), shape: [2])
    let h = NDArray([UInt64](arrayLiteral: 1, 2), shape: [2])
    #expect(try run("Mul", [e, e])[0].scalars(as: Int16.self) == [1, 4])
    #expect(try run("Sub", [f, f])[0].scalars(as: UInt16.self) == [0, 0])
    #expect(try run("Add", [g, g])[0].scalars(as: UInt32.self) == [2, 4])
    #expect(try run("Sub", [h, NDArray([UInt64](arrayLiteral: 2), shape: [1])])[0].scalars(as: UInt64.self) == [.max, 0])
    #expect(throws: RuntimeError.self) { try run("Div", [a, NDArray([UInt8](arrayLiteral: 0), shape: [1])]) }
  }

  @Test func clipOnSmallIntegers() throws {
    let x = NDArray([Int8](arrayLiteral: -128, -1, 0, 5, 127), shape: [5])
    let y = try run("Clip", [x, NDArray(scalar: Int8(-2)), NDArray(scalar: Int8(4))])[0]
    #expect(y.scalars(as: Int8.self) == [-2, -1, 0, 4, 4])
    let u = NDArray([UInt16](arrayLiteral: 0, 9, 60000), shape: [3])
    #expect(try run("Clip", [u, nil, NDArray(scalar: UInt16(100))])[0].scalars(as: UInt16.self) == [0, 9, 100])
  }

  @Test func expOnDouble() throws {
    let x = NDArray([Double](arrayLiteral: 0, 1, -2.5, 700), shape: [2, 2])
    let y = try run("Exp", [x])[0]
    #expect(y.dtype == .double && y.shape == [2, 2])
    let expected = [1, 2.718281828459045, 0.0820849986238988, 1.0142320547350045e304]
    for (v, e) in zip(y.scalars(as: Double.self), expected) { #expect(abs(v - e) <= 1e-15 * e) }
  }

  @Test func matMulOnDouble() throws {
    let a = NDArray([Double](arrayLiteral: 1, 2, 3, 4, 5, 6), shape: [2, 3])
    let b = NDArray([Double](arrayLiteral: 1e-9, 1, 0, 2, 1, 0), shape: [3, 2])
    let y = try run("MatMul", [a, b])[0]
    #expect(y.dtype == .double && y.shape == [2, 2])
    // 1e-9 survives in double (it would vanish in float32).
    for (v, e) in zip(y.scalars(as: Double.self), [3 + 1e-9, 5, 6 + 4e-9, 14]) { #expect(abs(v - e) <= 1e-15 * e) }
    // Batched with broadcasting, and a vector.
    let batched = try run("MatMul", [NDArray([Double](repeating: 1, count: 12), shape: [2, 2, 3]), b])[0]
    #expect(batched.shape == [2, 2, 2])
    let vector = try run("MatMul", [NDArray([Double](arrayLiteral: 1, 1, 1), shape: [3]), b])[0]
    #expect(vector.shape == [2])
    for (v, e) in zip(vector.scalars(as: Double.self), [1 + 1e-9, 3]) { #expect(abs(v - e) <= 1e-15 * e) }
    #expect(throws: RuntimeError.self) { try run("MatMul", [a, NDArray([Float](repeating: 0, count: 6), shape: [3, 2])]) }
  }

  /// One-row and one-column products take sgemv: every transposition against a direct sum.
  @Test(arguments: [(1, 7, 5), (6, 1, 4), (1, 1, 3), (1, 9, 1)])
  func oneRowOrColumnProducts(m: Int, n: Int, k: Int) {
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
      let a = random([m * k], seed: 3).scalars(as: Float.self)
      let b = random([k * n], seed: 4).scalars(as: Float.self)
      // Leading dimensions padded by 2 to check the strides.
      let lda = (ta ? m : k) + 2
      let ldb = (tb ? k : n) + 2
      let ldc = n + 2
      var pa = [Float](repeating: .nan, count: (ta ? k : m) * lda)
      var pb = [Float](repeating: .nan, count: (tb ? n : k) * ldb)
      for i in 0..<m { for p in 0..<k { pa[ta ? p * lda + i : i * lda + p] = a[i * k + p] } }
      for p in 0..<k { for j in 0..<n { pb[tb ? j * ldb + p : p * ldb + j] = b[p * n + j] } }
      for beta: Float in [0, 0.5] {
        var c = [Float](repeating: beta == 0 ? .nan : 1, count: m * ldc)
        BLAS.sgemm(
          transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 2, a: pa, lda: lda, b: pb, ldb: ldb, beta: beta,
          c: &c, ldc: ldc)
        for i in 0..<m {
          for j in 0..<n {
            var s: Float = 0
            for p in 0..<k { s += a[i * k + p] * b[p * n + j] }
            let expected = 2 * s + (beta == 0 ? 0 : beta)
            #expect(abs(c[i * ldc + j] - expected) <= 1e-5, "m \(m) n \(n) k \(k) ta \(ta) tb \(tb) beta \(beta)")
          }
          // Columns past n are not touched.
          if beta != 0 { #expect(c[i * ldc + n] == 1) }
        }
      }
    }
  }
}
