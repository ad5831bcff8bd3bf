import Graph
import Testing

@testable import Runtime

// Small cases are worked out by hand; large ones are checked against a naive loop.

/// Runs a one-input, one-output node on `threads` threads.
private func runOnThreads(_ opType: String, _ x: NDArray, attributes: [Attribute], threads: Int) throws -> NDArray {
  var g = Graph(name: opType)
  let input = try g.addInput(name: "x", type: nil)
  let node = try g.addNode(opType: opType, name: "n", inputs: [input], outputs: ["y"], attributes: attributes)
  g.addOutput(g[node].outputs[0]!)
  let session = try Session(graph: g, opset: 17, options: SessionOptions(threadCount: threads))
  return try session.run(["x": x], fetching: ["y"])[0]
}

/// The permuted array, by a naive loop over the output.
private func naiveTranspose(_ x: [Float], _ shape: [Int], _ perm: [Int]) -> [Float] {
  let inStrides = ShapeArithmetic.strides(shape)
  let outShape = perm.map { shape[$0] }
  let outStrides = ShapeArithmetic.strides(outShape)
  return (0..<x.count).map { o in
    var source = 0
    for (axis, stride) in outStrides.enumerated() { source += (o / stride) % outShape[axis] * inStrides[perm[axis]] }
    return x[source]
  }
}

@Suite struct TransposeTests {
  @Test func defaultPermReverses() throws {
    expectClose(try runFloat("Transpose", [iota([2, 3])]), [0, 3, 1, 4, 2, 5], shape: [3, 2])
    // x[i][j][k] = 6i + 2j + k; reversed: y[k][j][i].
    expectClose(try runFloat("Transpose", [iota([2, 3, 2])]), [0, 6, 2, 8, 4, 10, 1, 7, 3, 9, 5, 11], shape: [2, 3, 2])
  }

  @Test func explicitPerms() throws {
    let x = iota([2, 3, 2])
    // The last axis stays last: rows of 2 move whole.
    expectClose(
      try runFloat("Transpose", [x], attributes: [.ints("perm", [1, 0, 2])]), [0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11],
      shape: [3, 2, 2])
    expectClose(
      try runFloat("Transpose", [x], attributes: [.ints("perm", [2, 0, 1])]), [0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11],
      shape: [2, 2, 3])
    expectClose(try runFloat("Transpose", [x], attributes: [.ints("perm", [0, 1, 2])]), x)
  }

  @Test func movingOnlyUnitAxesIsAView() throws {
    let x = iota([1, 3, 1])
    let y = try runFloat("Transpose", [x], attributes: [.ints("perm", [2, 1, 0])])
    expectClose(y, [0, 1, 2], shape: [1, 3, 1])
    #expect(y.storage === x.storage)
  }

  @Test func everyElementWidth() throws {
    let i64 = NDArray([Int64(1), 2, 3, 4, 5, 6], shape: [2, 3])
    #expect(try run("Transpose", [i64])[0].scalars(as: Int64.self) == [1, 4, 2, 5, 3, 6])
    let i32 = NDArray([Int32(1), 2, 3, 4, 5, 6], shape: [2, 3])
    #expect(try run("Transpose", [i32])[0].scalars(as: Int32.self) == [1, 4, 2, 5, 3, 6])
    let flags = NDArray([true, false, false, true, true, false], shape: [3, 2])
    #expect(try run("Transpose", [flags])[0].scalars(as: Bool.self) == [true, false, true, false, true, false])
    let bytes = NDArray([UInt8(1), 2, 3, 4], shape: [2, 2])
    #expect(try run("Transpose", [bytes])[0].scalars(as: UInt8.self) == [1, 3, 2, 4])
    let signed = NDArray([Int8(-1), 2, -3, 4], shape: [2, 2])
    #expect(try run("Transpose", [signed])[0].scalars(as: Int8.self) == [-1, -3, 2, 4])
    let doubles = NDArray([Double(1), 2, 3, 4], shape: [2, 2])
    #expect(try run("Transpose", [doubles])[0].scalars(as: Double.self) == [1, 3, 2, 4])
  }

  @Test func emptyAndErrors() throws {
    #expect(try runFloat("Transpose", [NDArray(zeros: .float, shape: [0, 3])]).shape == [3, 0])
    expectRuntimeError(containing: "attribute 'perm': [0, 0] is not a permutation") {
      _ = try runFloat("Transpose", [iota([2, 2])], attributes: [.ints("perm", [0, 0])])
    }
    expectRuntimeError(containing: "attribute 'perm': [1, 0] is not a permutation of the 3 axes") {
      _ = try runFloat("Transpose", [iota([2, 2, 2])], attributes: [.ints("perm", [1, 0])])
    }
  }

  /// Blocked tiles with ragged edges, rows, and several threads, against a naive loop.
  @Test(arguments: [
    ([67, 45], [1, 0]), ([2, 3, 33, 35], [0, 2, 3, 1]), ([2, 33, 35, 3], [0, 3, 1, 2]), ([5, 6, 7, 8], [3, 1, 0, 2]),
    ([40, 3, 50], [1, 0, 2]), ([4, 5, 6, 7, 3], [4, 2, 0, 3, 1]),
  ])
  func largeAgainstNaive(shape: [Int], perm: [Int]) throws {
    let x = random(shape, seed: UInt64(shape.reduce(0, +)))
    let expected = naiveTranspose(x.scalars(as: Float.self), shape, perm)
    for threads in [1, 3] {
      let y = try runOnThreads("Transpose", x, attributes: [.ints("perm", perm)], threads: threads)
      #expect(y.shape == perm.map { shape[$0] })
      #expect(y.scalars(as: Float.self) == expected)
    }
  }
}

@Suite struct DepthSpaceTests {
  @Test func depthToSpaceModes() throws {
    // Channel k at w is 2k + w; DCR reads the depth as [by, bx, c].
    let x = iota([1, 4, 1, 2])
    let dcr = try runFloat("DepthToSpace", [x], attributes: [.int("blocksize", 2)])
    expectClose(dcr, [0, 2, 1, 3, 4, 6, 5, 7], shape: [1, 1, 2, 4])
    // 8 channels of one pixel: DCR takes channel (2by + bx)·2 + c, CRD channel 4c + 2by + bx.
    let depth = iota([1, 8, 1, 1])
    expectClose(
      try runFloat("DepthToSpace", [depth], attributes: [.int("blocksize", 2), .string("mode", "DCR")]),
      [0, 2, 4, 6, 1, 3, 5, 7], shape: [1, 2, 2, 2])
    expectClose(
      try runFloat("DepthToSpace", [depth], attributes: [.int("blocksize", 2), .string("mode", "CRD")]),
      [0, 1, 2, 3, 4, 5, 6, 7], shape: [1, 2, 2, 2])
  }

  @Test func spaceToDepthInvertsDepthToSpace() throws {
    let x = floats([0, 2, 1, 3, 4, 6, 5, 7], [1, 1, 2, 4])
    expectClose(try runFloat("SpaceToDepth", [x], attributes: [.int("blocksize", 2)]), iota([1, 4, 1, 2]))
    let y = random([2, 3, 4, 6], seed: 5)
    let depth = try runFloat("SpaceToDepth", [y], attributes: [.int("blocksize", 2)])
    #expect(depth.shape == [2, 12, 2, 3])
    expectClose(try runFloat("DepthToSpace", [depth], attributes: [.int("blocksize", 2)]), y)
    let ints = NDArray((0..<16).map { Int64($0) }, shape: [1, 1, 4, 4])
    let packed = try run("SpaceToDepth", [ints], attributes: [.int("blocksize", 4)])[0]
    #expect(packed.shape == [1, 16, 1, 1] && packed.scalars(as: Int64.self) == (0..<16).map { Int64($0) })
  }

  @Test func errors() {
    expectRuntimeError(containing: "divisible by blocksize² = 4") {
      _ = try runFloat("DepthToSpace", [iota([1, 6, 1, 1])], attributes: [.int("blocksize", 2)])
    }
    expectRuntimeError(containing: "divisible by blocksize 2") {
      _ = try runFloat("SpaceToDepth", [iota([1, 1, 3, 2])], attributes: [.int("blocksize", 2)])
    }
    expectRuntimeError(containing: "attribute 'mode': unsupported value 'XYZ'") {
      _ = try runFloat("DepthToSpace", [iota([1, 4, 1, 1])], attributes: [.int("blocksize", 2), .string("mode", "XYZ")])
    }
  }
}
