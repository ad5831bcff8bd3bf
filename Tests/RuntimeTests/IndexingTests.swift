import Graph
import Testing

@testable import Runtime

// Expected values are worked out by hand from the ONNX operator definitions (and were checked
// against onnxruntime 1.32 during development).

/// A 1-D int64 array.
private func int64s(_ values: [Int]) -> NDArray { NDArray(values.map { Int64($0) }, shape: [values.count]) }

private func int64s(_ array: NDArray) -> [Int64] { array.scalars(as: Int64.self) }

@Suite struct SliceTests {
  /// [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
  let x = iota([3, 4])

  func slice(
    _ x: NDArray, starts: [Int], ends: [Int], axes: [Int]? = nil, steps: [Int]? = nil
  ) throws -> NDArray {
    try run("Slice", [x, int64s(starts), int64s(ends), axes.map(int64s), steps.map(int64s)], opset: 13)[0]
  }

  @Test func rowsAndColumns() throws {
    let rows = try slice(x, starts: [1, 0], ends: [3, Int(Int64.max)], axes: [0, 1])
    expectClose(rows, [4, 5, 6, 7, 8, 9, 10, 11], shape: [2, 4])
    #expect(rows.storage === x.storage)  // a contiguous run of the input: a view
    expectClose(try slice(x, starts: [1], ends: [-1], axes: [-1]), [1, 2, 5, 6, 9, 10], shape: [3, 2])
    expectClose(try slice(x, starts: [0, 1], ends: [2, 3]), [1, 2, 5, 6], shape: [2, 2])
    expectClose(try slice(x, starts: [0], ends: [100], axes: [1], steps: [3]), [0, 3, 4, 7, 8, 11], shape: [3, 2])
    // Starts and ends beyond the extent are clamped.
    expectClose(try slice(x, starts: [-10], ends: [10], axes: [0]), x)
  }

  @Test func negativeSteps() throws {
    expectClose(
      try slice(x, starts: [-1], ends: [Int(Int64.min)], axes: [1], steps: [-1]),
      [3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8], shape: [3, 4])
    // Start clamps to d − 1 = 2, end to −1: rows 2, 0.
    expectClose(
      try slice(x, starts: [Int(Int64.max)], ends: [-Int(Int64.max)], axes: [0], steps: [-2]),
      [8, 9, 10, 11, 0, 1, 2, 3], shape: [2, 4])
    // Both axes reversed, the columns by 2 from column 2: (2, 2), (2, 0), (1, 2), …
    expectClose(
      try slice(x, starts: [2, 2], ends: [-4, -5], axes: [0, 1], steps: [-1, -2]),
      [10, 8, 6, 4, 2, 0], shape: [3, 2])
  }

  @Test func emptyResults() throws {
    #expect(try slice(x, starts: [2], ends: [1], axes: [0]).shape == [0, 4])
    #expect(try slice(x, starts: [0], ends: [2], axes: [0], steps: [-1]).shape == [0, 4])
    #expect(try slice(x, starts: [5], ends: [9], axes: [1]).shape == [3, 0])
    #expect(try slice(NDArray(zeros: .float, shape: [0, 2]), starts: [0], ends: [1], axes: [0]).shape == [0, 2])
  }

  @Test func int32InputsAndIntegerData() throws {
    let data = NDArray((0..<6).map { Int64($0) }, shape: [6])
    let y = try run(
      "Slice",
      [data, NDArray([Int32(4)], shape: [1]), NDArray([Int32(0)], shape: [1]), nil, NDArray([Int32(-2)], shape: [1])],
      opset: 13)[0]
    #expect(int64s(y) == [4, 2])
    let flags = NDArray([true, false, true, true], shape: [4])
    #expect(try slice(flags, starts: [1], ends: [3]).scalars(as: Bool.self) == [false, true])
  }

  @Test func attributesBeforeOpset10() throws {
    let y = try run(
      "Slice", [x], attributes: [.ints("starts", [1]), .ints("ends", [1000]), .ints("axes", [1])], opset: 9)[0]
    expectClose(y, [1, 2, 3, 5, 6, 7, 9, 10, 11], shape: [3, 3])
  }

  @Test func errors() {
    expectRuntimeError(containing: "steps must not be 0") {
      _ = try slice(x, starts: [0], ends: [1], axes: [0], steps: [0])
    }
    expectRuntimeError(containing: "axis -2 is repeated") {
      _ = try slice(x, starts: [0, 0], ends: [1, 1], axes: [0, -2])
    }
    expectRuntimeError(containing: "axis 2 is out of range") { _ = try slice(x, starts: [0], ends: [1], axes: [2]) }
    expectRuntimeError(containing: "one entry per sliced axis") {
      _ = try slice(x, starts: [0, 0], ends: [1], axes: [0])
    }
  }
}

@Suite struct GatherTests {
  /// [[0, 1], [2, 3], [4, 5]]
  let x = iota([3, 2])

  @Test func alongAxes() throws {
    let rows = try runFloat("Gather", [x, NDArray([Int64(0), 1, 1, 2], shape: [2, 2])])
    expectClose(rows, [0, 1, 2, 3, 2, 3, 4, 5], shape: [2, 2, 2])
    let columns = try runFloat("Gather", [x, NDArray([Int32(-1), 0], shape: [2])], attributes: [.int("axis", 1)])
    expectClose(columns, [1, 0, 3, 2, 5, 4], shape: [3, 2])
    let negativeAxis = try runFloat("Gather", [x, NDArray([Int64(1)], shape: [1])], attributes: [.int("axis", -1)])
    expectClose(negativeAxis, [1, 3, 5], shape: [3, 1])
  }

  @Test func scalarIndexIsAView() throws {
    let y = try runFloat("Gather", [x, NDArray(scalar: Int64(-1))])
    expectClose(y, [4, 5], shape: [2])
    #expect(y.storage === x.storage)
  }

  @Test func emptyIndicesAndIntegerData() throws {
    #expect(try runFloat("Gather", [x, NDArray([Int64](), shape: [0])]).shape == [0, 2])
    let data = NDArray([Int64(10), 20, 30], shape: [3])
    #expect(int64s(try run("Gather", [data, NDArray([Int64(2), -3, 2], shape: [3])])[0]) == [30, 10, 30])
    let bytes = NDArray([UInt8(7), 8, 9], shape: [3])
    #expect(try run("Gather", [bytes, NDArray([Int32(1)], shape: [1])])[0].scalars(as: UInt8.self) == [8])
  }

  @Test func errors() {
    expectRuntimeError(containing: "index 3 is out of range for axis 0 of extent 3") {
      _ = try runFloat("Gather", [x, NDArray([Int64(3)], shape: [1])])
    }
    expectRuntimeError(containing: "index -4 is out of range") {
      _ = try runFloat("Gather", [x, NDArray([Int64(-4)], shape: [1])])
    }
    expectRuntimeError(containing: "indices must be int32 or int64") {
      _ = try runFloat("Gather", [x, floats([0], [1])])
    }
    expectRuntimeError(containing: "attribute 'axis'") {
      _ = try runFloat("Gather", [x, NDArray([Int64(0)], shape: [1])], attributes: [.int("axis", 2)])
    }
  }

  /// The examples of the GatherElements operator definition.
  @Test func gatherElements() throws {
    let y = try runFloat(
      "GatherElements", [floats([1, 2, 3, 4], [2, 2]), NDArray([Int64(0), 0, 1, 0], shape: [2, 2])],
      attributes: [.int("axis", 1)])
    expectClose(y, [1, 1, 4, 3], shape: [2, 2])
    let z = try runFloat(
      "GatherElements", [iota([3, 3], from: 1), NDArray([Int32(1), 2, 0, 2, 0, 0], shape: [2, 3])])
    expectClose(z, [4, 8, 3, 7, 2, 3], shape: [2, 3])
    // Negative indices, a negative axis, and indices narrower than the data off the axis.
    let w = try runFloat(
      "GatherElements", [floats([1, 2, 3, 4], [2, 2]), NDArray([Int64(-1), 0], shape: [1, 2])],
      attributes: [.int("axis", -1)])
    expectClose(w, [2, 1], shape: [1, 2])
    #expect(try runFloat("GatherElements", [iota([2, 2]), NDArray([Int64](), shape: [0, 2])]).shape == [0, 2])
    expectRuntimeError(containing: "index 2 is out of range") {
      _ = try runFloat("GatherElements", [iota([2, 2]), NDArray([Int64(2), 0], shape: [1, 2])])
    }
    expectRuntimeError(containing: "do not fit data") {
      _ = try runFloat("GatherElements", [iota([2, 2]), NDArray([Int64(0), 0, 0], shape: [1, 3])])
    }
  }
}

@Suite struct SqueezeUnsqueezeSizeTests {
  let x = iota([1, 3, 1, 2])

  @Test func squeeze() throws {
    #expect(try runFloat("Squeeze", [x], opset: 13).shape == [3, 2])
    #expect(try runFloat("Squeeze", [x, int64s([-2])], opset: 13).shape == [1, 3, 2])
    #expect(try runFloat("Squeeze", [x, int64s([])], opset: 13).shape == [3, 2])
    #expect(try runFloat("Squeeze", [x], attributes: [.ints("axes", [0])], opset: 11).shape == [3, 1, 2])
    let y = try runFloat("Squeeze", [x, int64s([0, 2])], opset: 13)
    expectClose(y, [0, 1, 2, 3, 4, 5], shape: [3, 2])
    #expect(y.storage === x.storage)
    expectRuntimeError(containing: "cannot squeeze axis 1 of extent 3") {
      _ = try runFloat("Squeeze", [x, int64s([1])], opset: 13)
    }
    // Opset 13 takes the axes as an input: the attribute is unknown there.
    expectRuntimeError(containing: "attribute 'axes': is not supported") {
      _ = try runFloat("Squeeze", [x], attributes: [.ints("axes", [0])], opset: 13)
    }
  }

  @Test func unsqueeze() throws {
    let y = iota([3, 2])
    #expect(try runFloat("Unsqueeze", [y, int64s([0, -1])], opset: 13).shape == [1, 3, 2, 1])
    #expect(try runFloat("Unsqueeze", [y, int64s([3, 1])], opset: 13).shape == [3, 1, 2, 1])
    #expect(try runFloat("Unsqueeze", [y], attributes: [.ints("axes", [1])], opset: 11).shape == [3, 1, 2])
    #expect(try runFloat("Unsqueeze", [NDArray(scalar: Float(2)), int64s([0])], opset: 13).shape == [1])
    expectRuntimeError(containing: "axis -4 is repeated") {
      _ = try runFloat("Unsqueeze", [y, int64s([0, -4])], opset: 13)
    }
    expectRuntimeError(containing: "axis 4 is out of range for rank 4") {
      _ = try runFloat("Unsqueeze", [y, int64s([0, 4])], opset: 13)
    }
  }

  @Test func size() throws {
    let s = try run("Size", [NDArray(zeros: .int32, shape: [2, 3, 4])])[0]
    #expect(s.dtype == .int64 && s.shape == [] && int64s(s) == [24])
    #expect(int64s(try run("Size", [NDArray(zeros: .float, shape: [0, 3])])[0]) == [0])
    #expect(int64s(try run("Size", [NDArray(scalar: true)])[0]) == [1])
  }
}

@Suite struct SplitTests {
  @Test func sizesFromInputAndAttribute() throws {
    let parts = try run("Split", [iota([5]), int64s([2, 3])], outputs: 2, opset: 13)
    expectClose(parts[0], [0, 1], shape: [2])
    expectClose(parts[1], [2, 3, 4], shape: [3])
    // [[0, 1, 2], [3, 4, 5]] along the last axis, opset 11 attribute.
    let columns = try run(
      "Split", [iota([2, 3])], attributes: [.int("axis", -1), .ints("split", [1, 2])], outputs: 2, opset: 11)
    expectClose(columns[0], [0, 3], shape: [2, 1])
    expectClose(columns[1], [1, 2, 4, 5], shape: [2, 2])
    let empty = try run("Split", [iota([2, 3]), int64s([0, 2])], outputs: 2, opset: 13)
    #expect(empty[0].shape == [0, 3])
    expectClose(empty[1], [0, 1, 2, 3, 4, 5], shape: [2, 3])
  }

  @Test func equalPartsAndRemainder() throws {
    let x = iota([6, 2])
    let thirds = try run("Split", [x], outputs: 3, opset: 13)
    #expect(thirds.map(\.shape) == [[2, 2], [2, 2], [2, 2]])
    expectClose(thirds[2], [8, 9, 10, 11], shape: [2, 2])
    #expect(thirds[1].storage === x.storage)  // parts of a leading axis are views
    // num_outputs (opset 18): parts of ⌈7/3⌉ = 3, the last smaller.
    let parts = try run("Split", [iota([7])], attributes: [.int("num_outputs", 3)], outputs: 3, opset: 18)
    expectClose(parts[0], [0, 1, 2], shape: [3])
    expectClose(parts[1], [3, 4, 5], shape: [3])
    expectClose(parts[2], [6], shape: [1])
    let ints = try run(
      "Split", [NDArray([Int32(1), 2, 3, 4], shape: [1, 4])], attributes: [.int("axis", 1)], outputs: 2)
    #expect(ints.map { $0.scalars(as: Int32.self) } == [[1, 2], [3, 4]])
  }

  @Test func errors() {
    expectRuntimeError(containing: "does not split evenly into 2 outputs") {
      _ = try run("Split", [iota([5])], outputs: 2, opset: 13)
    }
    expectRuntimeError(containing: "split [2, 2] does not cut axis 0 of extent 5") {
      _ = try run("Split", [iota([5]), int64s([2, 2])], outputs: 2, opset: 13)
    }
    expectRuntimeError(containing: "cannot split axis 0 of extent 5 into 4 parts") {
      _ = try run("Split", [iota([5])], attributes: [.int("num_outputs", 4)], outputs: 4, opset: 18)
    }
    expectRuntimeError(containing: "attribute 'num_outputs': is 3, but the node has 2 outputs") {
      _ = try run("Split", [iota([6])], attributes: [.int("num_outputs", 3)], outputs: 2, opset: 18)
    }
  }
}
