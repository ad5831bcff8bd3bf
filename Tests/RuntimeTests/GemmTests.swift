import Graph
import Testing

@testable import Runtime

@Suite struct GemmTests {
  let a = floats([1, 2, 3, 4, 5, 6], [2, 3])
  let b = floats([7, 8, 9, 10, 11, 12], [3, 2])

  @Test func plainWithRowBias() throws {
    expectClose(try runFloat("Gemm", [a, b, floats([1, 2], [2])]), [59, 66, 140, 156], shape: [2, 2])
  }

  @Test func columnBiasAndScalarBias() throws {
    expectClose(try runFloat("Gemm", [a, b, floats([1, 2], [2, 1])]), [59, 65, 141, 156], shape: [2, 2])
    let scaled = try runFloat(
      "Gemm", [a, b, NDArray(scalar: Float(1))], attributes: [.float("alpha", 0.5), .float("beta", 2)])
    expectClose(scaled, [31, 34, 71.5, 79], shape: [2, 2])
  }

  @Test func transposesWithoutC() throws {
    let at = floats([1, 4, 2, 5, 3, 6], [3, 2])
    let bt = floats([7, 9, 11, 8, 10, 12], [2, 3])
    let y = try runFloat("Gemm", [at, bt], attributes: [.int("transA", 1), .int("transB", 1)])
    expectClose(y, [58, 64, 139, 154], shape: [2, 2])
  }

  @Test func fullCIsNotModified() throws {
    // C is a constant: writing the output must not change it for the next run.
    let c = floats([1, 1, 1, 1], [2, 2])
    for _ in 0..<2 {
      expectClose(try runFloat("Gemm", [a, b, c], constants: [2: c]), [59, 65, 140, 155], shape: [2, 2])
    }
    #expect(c.scalars(as: Float.self) == [1, 1, 1, 1])
  }

  @Test func badShapesAreErrors() {
    expectRuntimeError(containing: "cannot multiply") { _ = try runFloat("Gemm", [a, a]) }
    expectRuntimeError(containing: "does not broadcast") { _ = try runFloat("Gemm", [a, b, floats([1, 2, 3], [3])]) }
  }
}

@Suite struct MatMulTests {
  let a = floats([1, 2, 3, 4, 5, 6], [2, 3])
  let b = floats([7, 8, 9, 10, 11, 12], [3, 2])

  @Test func matrices() throws {
    expectClose(try runFloat("MatMul", [a, b]), [58, 64, 139, 154], shape: [2, 2])
  }

  @Test func vectorOperands() throws {
    let v = floats([1, 2, 3], [3])
    expectClose(try runFloat("MatMul", [v, b]), [58, 64], shape: [2])
    expectClose(try runFloat("MatMul", [a, floats([1, 1, 1], [3])]), [6, 15], shape: [2])
    expectClose(try runFloat("MatMul", [v, floats([4, 5, 6], [3])]), [32], shape: [])
  }

  @Test func batchFoldedIntoOneProduct() throws {
    // [2, 2, 3] · [3, 2]: both batch entries use the same B.
    let batched = NDArray(a.scalars(as: Float.self) + a.scalars(as: Float.self).map { -$0 }, shape: [2, 2, 3])
    expectClose(try runFloat("MatMul", [batched, b]), [58, 64, 139, 154, -58, -64, -139, -154], shape: [2, 2, 2])
  }

  @Test func broadcastBatches() throws {
    // A [2, 1, 2, 2], B [3, 2, 2] → [2, 3, 2, 2]; checked against per-batch products.
    let x = random([2, 1, 2, 2], seed: 5)
    let y = random([3, 2, 2], seed: 6)
    let out = try runFloat("MatMul", [x, y])
    let xs = x.scalars(as: Float.self)
    let ys = y.scalars(as: Float.self)
    var expected: [Float] = []
    for i in 0..<2 {
      for j in 0..<3 {
        for r in 0..<2 {
          for c in 0..<2 {
            expected.append(xs[i * 4 + r * 2] * ys[j * 4 + c] + xs[i * 4 + r * 2 + 1] * ys[j * 4 + 2 + c])
          }
        }
      }
    }
    expectClose(out, expected, shape: [2, 3, 2, 2])
    // And a 1-D A against batched B: [2] · [3, 2, 2] → [3, 2].
    let v = try runFloat("MatMul", [floats([1, -1], [2]), y])
    var expectedV: [Float] = []
    for j in 0..<3 {
      for c in 0..<2 { expectedV.append(ys[j * 4 + c] - ys[j * 4 + 2 + c]) }
    }
    expectClose(v, expectedV, shape: [3, 2])
  }

  @Test func emptyInnerDimensionGivesZeros() throws {
    expectClose(
      try runFloat("MatMul", [NDArray(zeros: .float, shape: [2, 0]), NDArray(zeros: .float, shape: [0, 3])]),
      [0, 0, 0, 0, 0, 0], shape: [2, 3])
  }

  @Test func mismatchIsAnError() {
    expectRuntimeError(containing: "node 'n' (MatMul): cannot multiply [2, 3] by [2, 3]") {
      _ = try runFloat("MatMul", [a, a])
    }
  }
}
