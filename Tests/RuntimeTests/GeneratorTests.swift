import Graph
import Testing

@testable import Runtime

// Expected values are worked out by hand from the ONNX operator definitions.

private func int64s(_ values: [Int]) -> NDArray { NDArray(values.map { Int64($0) }, shape: [values.count]) }

@Suite struct ConstantOfShapeTests {
  @Test func defaultIsFloatZero() throws {
    let y = try run("ConstantOfShape", [int64s([2, 3])])[0]
    expectClose(y, [Float](repeating: 0, count: 6), shape: [2, 3])
  }

  @Test func valueTensorOfAnyType() throws {
    let sevens = try run(
      "ConstantOfShape", [int64s([2])], attributes: [Attribute("value", .tensor(Tensor(int64s: [7], shape: [1])))])[0]
    #expect(sevens.dtype == .int64 && sevens.shape == [2] && sevens.scalars(as: Int64.self) == [7, 7])
    let truth = Tensor(dtype: .bool, shape: [1], storage: .copying([UInt8(1)]))!
    let flags = try run("ConstantOfShape", [int64s([1, 3])], attributes: [Attribute("value", .tensor(truth))])[0]
    #expect(flags.shape == [1, 3] && flags.scalars(as: Bool.self) == [true, true, true])
    let half = try run(
      "ConstantOfShape", [int64s([3])], attributes: [Attribute("value", .tensor(Tensor(floats: [0.5], shape: [1])))])[0]
    expectClose(half, [0.5, 0.5, 0.5], shape: [3])
  }

  @Test func scalarAndEmptyShapes() throws {
    let scalar = try run(
      "ConstantOfShape", [int64s([])], attributes: [Attribute("value", .tensor(Tensor(floats: [4], shape: [1])))])[0]
    expectClose(scalar, [4], shape: [])
    #expect(try run("ConstantOfShape", [int64s([2, 0])])[0].shape == [2, 0])
  }

  @Test func errors() {
    expectRuntimeError(containing: "attribute 'value': must hold one element; holds 2") {
      let pair = Attribute("value", .tensor(Tensor(floats: [1, 2], shape: [2])))
      _ = try run("ConstantOfShape", [int64s([2])], attributes: [pair])
    }
    expectRuntimeError(containing: "negative extent") { _ = try run("ConstantOfShape", [int64s([2, -1])]) }
    expectRuntimeError(containing: "must be int64") { _ = try run("ConstantOfShape", [floats([2], [1])]) }
  }
}

@Suite struct ExpandTests {
  /// [[1], [2], [3]]
  let column = floats([1, 2, 3], [3, 1])

  @Test func bidirectional() throws {
    // The operator definition's example: [3, 1] with [2, 1, 6] gives [2, 3, 6].
    let y = try runFloat("Expand", [column, int64s([2, 1, 6])])
    let block: [Float] = [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3]
    expectClose(y, block + block, shape: [2, 3, 6])
    // A 1 in the shape keeps the input's extent.
    expectClose(try runFloat("Expand", [column, int64s([1])]), [1, 2, 3], shape: [3, 1])
    expectClose(try runFloat("Expand", [column, int64s([4])]), [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3], shape: [3, 4])
    expectClose(try runFloat("Expand", [floats([5, 6], [2]), int64s([2, 1])]), [5, 6, 5, 6], shape: [2, 2])
  }

  @Test func integersAndEmpty() throws {
    let y = try run("Expand", [NDArray([Int64(7), 8], shape: [2, 1]), int64s([2, 3])])[0]
    #expect(y.scalars(as: Int64.self) == [7, 7, 7, 8, 8, 8])
    let flags = try run("Expand", [NDArray([true], shape: [1]), int64s([2, 2])])[0]
    #expect(flags.scalars(as: Bool.self) == [true, true, true, true])
    #expect(try runFloat("Expand", [floats([1], [1]), int64s([0])]).shape == [0])
    #expect(try runFloat("Expand", [floats([1, 2, 3], [1, 3]), int64s([0, 1])]).shape == [0, 3])
  }

  @Test func errors() {
    expectRuntimeError(containing: "cannot expand [3, 1] to [2, 2]") {
      _ = try runFloat("Expand", [column, int64s([2, 2])])
    }
  }
}

@Suite struct TileTests {
  /// [[1, 2], [3, 4]]
  let x = floats([1, 2, 3, 4], [2, 2])

  @Test func repeatsPerAxis() throws {
    expectClose(try runFloat("Tile", [x, int64s([1, 2])]), [1, 2, 1, 2, 3, 4, 3, 4], shape: [2, 4])
    expectClose(try runFloat("Tile", [x, int64s([2, 1])]), [1, 2, 3, 4, 1, 2, 3, 4], shape: [4, 2])
    expectClose(
      try runFloat("Tile", [x, int64s([2, 2])]), [1, 2, 1, 2, 3, 4, 3, 4, 1, 2, 1, 2, 3, 4, 3, 4], shape: [4, 4])
    expectClose(try runFloat("Tile", [x, int64s([1, 1])]), x)
  }

  @Test func integersAndEmpty() throws {
    let y = try run("Tile", [NDArray([Int32(5), 6], shape: [2]), int64s([3])])[0]
    #expect(y.scalars(as: Int32.self) == [5, 6, 5, 6, 5, 6])
    #expect(try runFloat("Tile", [x, int64s([0, 3])]).shape == [0, 6])
  }

  @Test func errors() {
    expectRuntimeError(containing: "repeats [2] must be 2 non-negative counts") {
      _ = try runFloat("Tile", [x, int64s([2])])
    }
    expectRuntimeError(containing: "repeats [1, -1]") { _ = try runFloat("Tile", [x, int64s([1, -1])]) }
  }
}

@Suite struct RangeTests {
  func range<T: TensorElement>(_ start: T, _ limit: T, _ delta: T) throws -> NDArray {
    try run("Range", [NDArray(scalar: start), NDArray(scalar: limit), NDArray(scalar: delta)], opset: 11)[0]
  }

  @Test func floatingPoint() throws {
    expectClose(try range(Float(0), 1, 0.25), [0, 0.25, 0.5, 0.75], shape: [4])
    expectClose(try range(Float(1), -1, -0.5), [1, 0.5, 0, -0.5], shape: [4])
    expectClose(try range(Float(0), 1.1, 0.5), [0, 0.5, 1], shape: [3])
    #expect(try range(Float(0), 0, 1).shape == [0])
    #expect(try range(Float(0), 5, -1).shape == [0])
    #expect(try range(Double(1), 2, 0.5).scalars(as: Double.self) == [1, 1.5])
  }

  @Test func integers() throws {
    #expect(try range(Int64(0), 10, 3).scalars(as: Int64.self) == [0, 3, 6, 9])
    #expect(try range(Int64(10), 4, -3).scalars(as: Int64.self) == [10, 7])
    #expect(try range(Int32(-3), 3, 2).scalars(as: Int32.self) == [-3, -1, 1])
    #expect(try range(Int16(2), 5, 1).scalars(as: Int16.self) == [2, 3, 4])
    #expect(try range(Int64(3), 3, 1).shape == [0])
    #expect(try range(Int64(0), -5, 2).shape == [0])
  }

  @Test func errors() {
    expectRuntimeError(containing: "delta must not be 0") { _ = try range(Float(0), 1, 0) }
    expectRuntimeError(containing: "delta must not be 0") { _ = try range(Int64(0), 1, 0) }
    expectRuntimeError(containing: "input 1 is int64, input 0 is float") {
      _ = try run("Range", [NDArray(scalar: Float(0)), NDArray(scalar: Int64(1)), NDArray(scalar: Float(1))])
    }
    expectRuntimeError(containing: "input 2 must be a scalar") {
      _ = try run("Range", [NDArray(scalar: Float(0)), NDArray(scalar: Float(1)), floats([1, 2], [2])])
    }
    expectRuntimeError(containing: "input 0 of type bool is not supported") {
      _ = try run("Range", [NDArray(scalar: true), NDArray(scalar: true), NDArray(scalar: true)])
    }
  }
}
