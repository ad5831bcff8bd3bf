import Graph
import Linalg
import Testing

@testable import Runtime

/// The convolutions' own sgemm (`PackedGEMM`) against `BLAS.sgemm` on sizes that are not multiples
/// of its tiles (12×32, 6×16) or blocks (K 256, N 512, M 240), with bias, ReLU/Clip and threads, on
/// every instruction set this processor runs; and Conv through it against the direct reference.
@Suite struct PackedGEMMTests {
  struct Size: Sendable, CustomTestStringConvertible {
    let m: Int, n: Int, k: Int
    var testDescription: String { "\(m)×\(n)×\(k)" }
  }

  static let sizes: [Size] = [
    Size(m: 1, n: 1, k: 1), Size(m: 1, n: 37, k: 5), Size(m: 13, n: 1, k: 7), Size(m: 5, n: 17, k: 1),
    Size(m: 12, n: 32, k: 16), Size(m: 6, n: 16, k: 3), Size(m: 13, n: 33, k: 29), Size(m: 7, n: 31, k: 257),
    Size(m: 241, n: 47, k: 19), Size(m: 25, n: 515, k: 11), Size(m: 31, n: 61, k: 523), Size(m: 64, n: 49, k: 576),
    Size(m: 257, n: 529, k: 263),
  ]

  /// `act(A·B + bias)` by BLAS and the runtime's activation code: what Conv computed before.
  static func reference(
    _ a: [Float], _ b: [Float], bias: [Float]?, _ s: Size, activation: FusedActivation?
  ) -> [Float] {
    var c = [Float](repeating: 0, count: s.m * s.n)
    for i in 0..<s.m { for j in 0..<s.n { c[i * s.n + j] = bias?[i] ?? 0 } }
    c.withUnsafeMutableBufferPointer { cp in
      BLAS.sgemm(m: s.m, n: s.n, k: s.k, a: a, lda: s.k, b: b, ldb: s.n, beta: 1, c: cp.baseAddress!, ldc: s.n)
      activation?.apply(cp.baseAddress!, count: cp.count)
    }
    return c
  }

  static func packed(
    _ a: [Float], _ b: [Float], bias: [Float]?, _ s: Size, activation: FusedActivation?, isa: PackedGEMM.ISA,
    threads: Int = 1
  ) -> [Float] {
    let matrix = PackedGEMM.PackedMatrix(isa: isa, a, groups: 1, rows: s.m, depth: s.k)
    var c = [Float](repeating: .nan, count: s.m * s.n)
    let biasArray = bias ?? []
    biasArray.withUnsafeBufferPointer { bp in
      c.withUnsafeMutableBufferPointer { cp in
        let applied = PackedGEMM.multiply(
          matrix, group: 0, n: s.n, b: b, ldb: s.n, c: cp.baseAddress!, ldc: s.n, bias: bias == nil ? nil : bp.baseAddress,
          activation: activation, threads: threads)
        if !applied { activation?.apply(cp.baseAddress!, count: cp.count) }
      }
    }
    return c
  }

  /// Within a few float roundings of the sum of magnitudes, as two summation orders differ.
  static func expectAgree(_ x: [Float], _ y: [Float], _ a: [Float], _ b: [Float], _ s: Size, _ what: String) {
    var worst: Float = 0
    var at = 0
    for i in 0..<s.m {
      for j in 0..<s.n {
        var magnitude: Float = 1
        for p in 0..<s.k { magnitude += abs(a[i * s.k + p] * b[p * s.n + j]) }
        let (u, v) = (x[i * s.n + j], y[i * s.n + j])
        let error = u.isNaN || v.isNaN ? (u.isNaN == v.isNaN ? 0 : .infinity) : abs(u - v) / magnitude
        if error > worst { (worst, at) = (error, i * s.n + j) }
      }
    }
    #expect(worst <= 1e-6, "\(what): element \(at): \(x[at]) vs \(y[at])")
  }

  @Test(arguments: sizes)
  func matchesBLAS(_ s: Size) {
    #expect(PackedGEMM.detected == .none || !PackedGEMM.supported.isEmpty)
    let a = random([s.m, s.k], seed: 11).scalars(as: Float.self)
    let b = random([s.k, s.n], seed: 12).scalars(as: Float.self)
    let bias = random([s.m], seed: 13).scalars(as: Float.self)
    for isa in PackedGEMM.supported {
      for activation in [nil, FusedActivation.relu, .clip(min: -0.25, max: 0.5), .tanh] {
        for withBias in [false, true] {
          let expected = Self.reference(a, b, bias: withBias ? bias : nil, s, activation: activation)
          let actual = Self.packed(a, b, bias: withBias ? bias : nil, s, activation: activation, isa: isa)
          Self.expectAgree(actual, expected, a, b, s, "\(isa) \(String(describing: activation)) bias \(withBias)")
        }
      }
      // Threads split columns (wide products) or rows (narrow ones); the result is the same.
      let one = Self.packed(a, b, bias: bias, s, activation: .relu, isa: isa)
      let two = Self.packed(a, b, bias: bias, s, activation: .relu, isa: isa, threads: 2)
      #expect(one == two, "\(isa): two threads differ from one")
    }
  }

  /// ReLU and Clip in the tile treat NaN as the standalone kernels do (ReLU → 0, Clip keeps it).
  @Test func nanThroughActivations() {
    let s = Size(m: 13, n: 35, k: 9)
    let a = random([s.m, s.k], seed: 21).scalars(as: Float.self)
    var b = random([s.k, s.n], seed: 22).scalars(as: Float.self)
    b[3 * s.n + 4] = .nan
    b[5 * s.n + 33] = .infinity
    for isa in PackedGEMM.supported {
      for activation in [FusedActivation.relu, .clip(min: -0.25, max: 0.5)] {
        let expected = Self.reference(a, b, bias: nil, s, activation: activation)
        let actual = Self.packed(a, b, bias: nil, s, activation: activation, isa: isa)
        for i in expected.indices where expected[i].isNaN || actual[i].isNaN || expected[i].isInfinite {
          #expect(
            expected[i].bitPattern == actual[i].bitPattern || (expected[i].isNaN && actual[i].isNaN),
            "\(isa) \(activation) element \(i): \(actual[i]) vs \(expected[i])")
        }
        Self.expectAgree(actual, expected, a, b, s, "\(isa) \(activation)")
      }
    }
  }

  @Test func packsOnlyLoweredConvolutions() {
    let isa = PackedGEMM.detected
    let dense = random([8, 3, 3, 3], seed: 1)
    let depthwise = random([8, 1, 3, 3], seed: 1)
    #expect((Conv.pack(dense, group: 1, isa: isa) != nil) == (isa != .none))
    #expect(Conv.pack(depthwise, group: 8, isa: isa) == nil)
    #expect(Conv.pack(dense, group: 3, isa: isa) == nil)  // 8 output channels in 3 groups
    #expect(Conv.pack(nil, group: 1, isa: isa) == nil)
    #expect(Conv.pack(dense, group: 1, isa: .none) == nil)
  }

  struct ConvCase: Sendable, CustomTestStringConvertible {
    let x: [Int], w: [Int], group: Int, strides: [Int], pads: [Int]
    var dilations: [Int]? = nil
    var testDescription: String { "x\(x) w\(w) g\(group) s\(strides) p\(pads) d\(dilations ?? [])" }
  }

  /// Conv with a constant weight (packed) against the direct reference; output sizes of at least
  /// `PackedGEMM.minimumColumns`, so each goes through the packed product.
  @Test(arguments: [
    ConvCase(x: [2, 5, 9, 7], w: [13, 5, 3, 3], group: 1, strides: [1, 1], pads: [1, 1, 1, 1]),
    ConvCase(x: [1, 6, 8, 9], w: [27, 2, 3, 2], group: 3, strides: [1, 1], pads: [0, 1, 2, 0]),
    ConvCase(x: [1, 17, 6, 5], w: [29, 17, 1, 1], group: 1, strides: [1, 1], pads: [0, 0, 0, 0]),
    ConvCase(x: [1, 40, 11, 11], w: [7, 40, 1, 1], group: 1, strides: [2, 2], pads: [0, 0, 0, 0]),
    ConvCase(x: [1, 64, 9, 9], w: [19, 64, 3, 3], group: 1, strides: [2, 1], pads: [1, 1, 1, 1]),
    ConvCase(x: [1, 3, 41], w: [5, 3, 4], group: 1, strides: [2], pads: [2, 1]),
    ConvCase(x: [1, 3, 40], w: [7, 3, 3], group: 1, strides: [1], pads: [0, 3], dilations: [3]),
    // K = 360 and N = 600 cross the K and N blocks (256, 512) inside a channel and an output row.
    ConvCase(x: [1, 40, 30, 20], w: [13, 40, 3, 3], group: 1, strides: [1, 1], pads: [1, 1, 1, 1]),
    ConvCase(x: [1, 4, 13, 17], w: [6, 2, 3, 3], group: 2, strides: [3, 2], pads: [2, 0, 1, 2], dilations: [1, 2]),
    ConvCase(x: [2, 3, 23, 23], w: [8, 3, 7, 7], group: 1, strides: [2, 2], pads: [3, 3, 3, 3]),
    ConvCase(x: [1, 5, 6, 40], w: [9, 5, 5, 1], group: 1, strides: [1, 1], pads: [4, 0, 4, 0], dilations: [2, 1]),
    ConvCase(x: [1, 2, 4, 5, 6], w: [3, 2, 2, 3, 2], group: 1, strides: [1, 1, 1], pads: [0, 1, 1, 1, 0, 0]),
    // The vector packer: output rows wider than a vector (72, 33 and 23 columns: runs of several
    // chunks, masked edges on both sides), stride 2 (even lanes of two loads) with a right pad,
    // strides 3 and 4 (gathers) with dilations, one-column output rows (a run per column), a
    // kernel wider than the input, and a 1-D stride 5.
    ConvCase(x: [1, 3, 5, 70], w: [5, 3, 3, 3], group: 1, strides: [1, 1], pads: [1, 2, 1, 2]),
    ConvCase(x: [1, 2, 9, 67], w: [4, 2, 2, 5], group: 1, strides: [2, 3], pads: [1, 3, 0, 2], dilations: [2, 2]),
    ConvCase(x: [1, 3, 6, 131], w: [6, 3, 3, 3], group: 1, strides: [1, 4], pads: [0, 1, 0, 1]),
    ConvCase(x: [1, 3, 8, 45], w: [4, 3, 3, 3], group: 1, strides: [2, 2], pads: [1, 1, 1, 1]),
    ConvCase(x: [1, 4, 40, 3], w: [5, 4, 3, 3], group: 1, strides: [1, 1], pads: [0, 0, 0, 0]),
    ConvCase(x: [1, 2, 3, 20], w: [3, 2, 5, 7], group: 1, strides: [1, 1], pads: [2, 3, 2, 3]),
    ConvCase(x: [1, 3, 101], w: [4, 3, 3], group: 1, strides: [5], pads: [1, 2], dilations: [2]),
  ])
  func convThroughPackedProduct(_ c: ConvCase) throws {
    let x = random(c.x, seed: 1)
    let w = random(c.w, seed: 2)
    let b = random([c.w[0]], seed: 3)
    let dilations = c.dilations ?? [Int](repeating: 1, count: c.x.count - 2)
    let attributes: [Attribute] = [
      .int("group", c.group), .ints("strides", c.strides), .ints("pads", c.pads), .ints("dilations", dilations),
    ]
    let y = try runFloat("Conv", [x, nil, b], constants: [1: w], attributes: attributes)
    let expected = referenceConv(x, w, b, group: c.group, strides: c.strides, dilations: dilations, pads: c.pads)
    #expect(y.count / (c.x[0] * c.w[0]) >= PackedGEMM.minimumColumns)
    expectClose(y, expected, tolerance: 1e-5)
    // Every instruction set's tiles over the input packed straight from the image (first image and
    // group), against the same reference.
    let rank = c.x.count - 2
    guard rank <= 2 else { return }
    let (cg, mg) = (c.x[1] / c.group, c.w[0] / c.group)
    let outSize = expected.shape[2...].reduce(1, *)
    let geometry = WindowGeometry(
      input: Array(c.x[2...]), kernel: Array(c.w[2...]), strides: c.strides, dilations: dilations,
      padsBegin: Array(c.pads[..<rank]), padsEnd: Array(c.pads[rank...]), output: Array(expected.shape[2...]))
    let want = Array(expected.scalars(as: Float.self)[0..<(mg * outSize)])
    for isa in PackedGEMM.supported {
      let packed = try #require(Conv.pack(w, group: c.group, isa: isa))
      var got = [Float](repeating: .nan, count: mg * outSize)
      x.withUnsafeBufferPointer(of: Float.self) { xp in
        b.withUnsafeBufferPointer(of: Float.self) { bp in
          got.withUnsafeMutableBufferPointer { yp in
            let input = Conv.convolutionInput(xp.baseAddress!, cg, geometry)!
            PackedGEMM.multiply(
              packed, group: 0, n: outSize, b: input, c: yp.baseAddress!, ldc: outSize, bias: bp.baseAddress,
              activation: nil, threads: 1)
          }
        }
      }
      expectClose(NDArray(got, shape: [mg, outSize]), want, shape: [mg, outSize], tolerance: 1e-5)
    }
  }
}
