import Graph
import Testing

@testable import Runtime

@Suite struct ConcatTests {
  @Test func alongAxisOneAndNegative() throws {
    let a = floats([1, 2], [2, 1])
    let b = floats([3, 4, 5, 6], [2, 2])
    expectClose(try runFloat("Concat", [a, b], attributes: [.int("axis", 1)]), [1, 3, 4, 2, 5, 6], shape: [2, 3])
    expectClose(try runFloat("Concat", [a, b], attributes: [.int("axis", -1)]), [1, 3, 4, 2, 5, 6], shape: [2, 3])
    expectClose(
      try runFloat("Concat", [b, b], attributes: [.int("axis", 0)]), [3, 4, 5, 6, 3, 4, 5, 6], shape: [4, 2])
  }

  @Test func emptyInputAndIntegers() throws {
    let y = try run(
      "Concat", [NDArray([Int64(1), 2], shape: [2]), NDArray([Int64](), shape: [0]), NDArray([Int64(3)], shape: [1])],
      attributes: [.int("axis", 0)])[0]
    #expect(y.scalars(as: Int64.self) == [1, 2, 3])
  }

  @Test func mismatchIsAnError() {
    expectRuntimeError(containing: "input 1 has shape [3, 2]") {
      _ = try runFloat(
        "Concat", [NDArray(zeros: .float, shape: [2, 2]), NDArray(zeros: .float, shape: [3, 2])],
        attributes: [.int("axis", 1)])
    }
    expectRuntimeError(containing: "attribute 'axis': is required") { _ = try runFloat("Concat", [floats([1], [1])]) }
  }
}

@Suite struct ReshapeTests {
  let x = iota([2, 3])

  func reshape(_ x: NDArray, _ shape: [Int64], allowZero: Bool = false) throws -> NDArray {
    try runFloat(
      "Reshape", [x, NDArray(shape, shape: [shape.count])], attributes: allowZero ? [.int("allowzero", 1)] : [])
  }

  @Test func inferredAndCopiedExtents() throws {
    #expect(try reshape(x, [3, -1]).shape == [3, 2])
    #expect(try reshape(x, [0, -1]).shape == [2, 3])
    #expect(try reshape(x, [-1]).shape == [6])
    #expect(try reshape(iota([2, 3, 4]), [0, 0, -1, 2]).shape == [2, 3, 2, 2])
    expectClose(try reshape(x, [3, 2]), [0, 1, 2, 3, 4, 5], shape: [3, 2])
  }

  @Test func allowZero() throws {
    let empty = NDArray(zeros: .float, shape: [0, 3])
    #expect(try reshape(empty, [0, 3], allowZero: true).shape == [0, 3])
    #expect(try reshape(empty, [3, 0], allowZero: true).shape == [3, 0])
    expectRuntimeError(containing: "both 0") { _ = try reshape(empty, [0, -1], allowZero: true) }
  }

  @Test func errors() {
    expectRuntimeError(containing: "more than one -1") { _ = try reshape(x, [-1, -1]) }
    expectRuntimeError(containing: "cannot reshape [2, 3]") { _ = try reshape(x, [4, -1]) }
    expectRuntimeError(containing: "cannot reshape [2, 3] (6 elements) to [5]") { _ = try reshape(x, [5]) }
  }

  @Test func sharesStorage() throws {
    let y = x.reshaped([6])
    #expect(y.storage === x.storage)
  }
}

@Suite struct FlattenShapeIdentityTests {
  @Test func flatten() throws {
    let x = iota([2, 3, 4])
    #expect(try runFloat("Flatten", [x]).shape == [2, 12])
    #expect(try runFloat("Flatten", [x], attributes: [.int("axis", 0)]).shape == [1, 24])
    #expect(try runFloat("Flatten", [x], attributes: [.int("axis", 2)]).shape == [6, 4])
    #expect(try runFloat("Flatten", [x], attributes: [.int("axis", -1)]).shape == [6, 4])
    #expect(try runFloat("Flatten", [x], attributes: [.int("axis", 3)]).shape == [24, 1])
    expectRuntimeError(containing: "attribute 'axis'") {
      _ = try runFloat("Flatten", [x], attributes: [.int("axis", 4)])
    }
  }

  @Test func shapeWithStartAndEnd() throws {
    let x = NDArray(zeros: .float, shape: [2, 3, 4, 5])
    #expect(try run("Shape", [x])[0].scalars(as: Int64.self) == [2, 3, 4, 5])
    #expect(
      try run("Shape", [x], attributes: [.int("start", 1), .int("end", -1)])[0].scalars(as: Int64.self) == [3, 4])
    #expect(try run("Shape", [x], attributes: [.int("start", -10)])[0].scalars(as: Int64.self) == [2, 3, 4, 5])
    #expect(try run("Shape", [x], attributes: [.int("start", 3), .int("end", 1)])[0].shape == [0])
  }

  @Test func identityAndDropout() throws {
    let x = floats([1, 2], [2])
    expectClose(try runFloat("Identity", [x]), [1, 2], shape: [2])
    let dropped = try run("Dropout", [x, NDArray(scalar: Float(0.5))], outputs: 2)
    expectClose(dropped[0], [1, 2], shape: [2])
    #expect(dropped[1].scalars(as: Bool.self) == [true, true])
    expectClose(try run("Dropout", [x], attributes: [.float("ratio", 0.3)], opset: 7)[0], [1, 2], shape: [2])
    expectRuntimeError(containing: "training mode is not supported") {
      _ = try run("Dropout", [x, nil, NDArray(scalar: true)])
    }
  }

  @Test func constant() throws {
    let t = try run("Constant", [], attributes: [Attribute("value", .tensor(Tensor(floats: [1, 2], shape: [2])))])[0]
    expectClose(t, [1, 2], shape: [2])
    #expect(try run("Constant", [], attributes: [.ints("value_ints", [3, 4])])[0].scalars(as: Int64.self) == [3, 4])
    expectClose(try run("Constant", [], attributes: [.float("value_float", 2.5)])[0], [2.5], shape: [])
    expectRuntimeError(containing: "exactly one value attribute") { _ = try run("Constant", []) }
    expectRuntimeError(containing: "attribute 'value_string'") {
      _ = try run("Constant", [], attributes: [.string("value_string", "hi")])
    }
  }
}
