import Graph
import Testing

@testable import Runtime

/// Reference broadcasting: each output index mapped back to each operand by numpy's rules.
func referenceBroadcast(_ a: NDArray, _ b: NDArray, _ f: (Float, Float) -> Float) -> NDArray {
  let shape = BinaryBroadcast.shape(a.shape, b.shape)!
  let count = shape.reduce(1, *)
  let av = a.scalars(as: Float.self)
  let bv = b.scalars(as: Float.self)
  func index(_ flat: Int, into s: [Int]) -> Int {
    var rest = flat
    var result = 0
    var scale = 1
    for d in stride(from: shape.count - 1, through: 0, by: -1) {
      let i = rest % shape[d]
      rest /= shape[d]
      let k = d - (shape.count - s.count)
      if k >= 0 {
        result += (s[k] == 1 ? 0 : i) * scale
        scale *= s[k]
      }
    }
    return result
  }
  return NDArray((0..<count).map { f(av[index($0, into: a.shape)], bv[index($0, into: b.shape)]) }, shape: shape)
}

@Suite struct BroadcastTests {
  @Test func planCollapsesChannelBroadcast() {
    let plan = BinaryBroadcast([2, 3, 4, 5], [3, 1, 1])!
    #expect(plan.outputShape == [2, 3, 4, 5])
    #expect(plan.dims == [2, 3, 20])
    #expect(plan.stridesA == [60, 20, 1])
    #expect(plan.stridesB == [0, 1, 0])
    #expect(BinaryBroadcast([4, 5], [4, 5])!.isElementwise)
    #expect(BinaryBroadcast([4, 5], [])!.dims == [20])
    #expect(BinaryBroadcast([3], [4]) == nil)
    #expect(BinaryBroadcast.shape([2, 1], [1, 3]) == [2, 3])
    #expect(BinaryBroadcast.shape([0, 3], [3]) == [0, 3])
    #expect(BinaryBroadcast.shape([1], [0]) == [0])
  }

  struct Shapes: Sendable, CustomTestStringConvertible {
    let a: [Int], b: [Int]
    var testDescription: String { "\(a) + \(b)" }
  }

  @Test(arguments: [
    Shapes(a: [2, 3], b: [2, 3]), Shapes(a: [2, 3], b: []), Shapes(a: [], b: [2, 3]), Shapes(a: [2, 3], b: [3]),
    Shapes(a: [2, 1], b: [1, 3]), Shapes(a: [2, 3, 4, 5], b: [3, 1, 1]), Shapes(a: [3, 1, 5], b: [2, 1, 4, 1]),
    Shapes(a: [1, 1, 1], b: [4]), Shapes(a: [2, 3, 1, 5], b: [2, 1, 4, 5]), Shapes(a: [7, 1], b: [7, 6]),
  ])
  func addMatchesReference(_ s: Shapes) throws {
    let a = random(s.a, seed: 11)
    let b = random(s.b, seed: 12)
    expectClose(try runFloat("Add", [a, b]), referenceBroadcast(a, b, +))
    expectClose(try runFloat("Sub", [a, b]), referenceBroadcast(a, b, -))
    expectClose(try runFloat("Mul", [a, b]), referenceBroadcast(a, b, *))
    expectClose(try runFloat("Div", [a, b]), referenceBroadcast(a, b, /), tolerance: 1e-4)
  }

  @Test func largeArraysSplitAcrossThreadsMatch() throws {
    // Enough elements for the parallel path; the session runs on one thread, so call the plan directly.
    let a = random([64, 1, 1000], seed: 3)
    let b = random([1, 37, 1000], seed: 4)
    let plan = BinaryBroadcast(a.shape, b.shape)!
    var out = NDArray(uninitialized: .float, shape: plan.outputShape)
    a.withUnsafeBufferPointer(of: Float.self) { ap in
      b.withUnsafeBufferPointer(of: Float.self) { bp in
        out.withUnsafeMutableBufferPointer(of: Float.self) { op in
          plan.apply(
            Arithmetic<AddOperation, Float>.self, ap.baseAddress!, bp.baseAddress!, op.baseAddress!, threads: 4)
        }
      }
    }
    expectClose(out, referenceBroadcast(a, b, +))
  }

  @Test func emptyOperands() throws {
    #expect(try runFloat("Add", [NDArray(zeros: .float, shape: [0, 3]), floats([1, 2, 3], [3])]).shape == [0, 3])
    #expect(try runFloat("Mul", [NDArray(zeros: .float, shape: [2, 0]), floats([1], [1])]).shape == [2, 0])
    expectRuntimeError(containing: "cannot broadcast [3] with [0]") {
      _ = try runFloat("Add", [floats([1, 2, 3], [3]), NDArray(zeros: .float, shape: [0])])
    }
  }
}

@Suite struct IntegerArithmeticTests {
  @Test func int64DivisionTruncatesTowardZero() throws {
    let y = try run("Div", [NDArray([Int64(7), -7, 6], shape: [3]), NDArray([Int64(2)], shape: [1])])[0]
    #expect(y.dtype == .int64)
    #expect(y.scalars(as: Int64.self) == [3, -3, 3])
  }

  @Test func int64AddSubMulWrap() throws {
    let a = NDArray([Int64.max, 5], shape: [2])
    let b = NDArray([Int64(1), 3], shape: [2])
    #expect(try run("Add", [a, b])[0].scalars(as: Int64.self) == [Int64.min, 8])
    #expect(try run("Sub", [a, b])[0].scalars(as: Int64.self) == [Int64.max - 1, 2])
    #expect(
      try run("Mul", [NDArray([Int32(4), -3], shape: [2]), NDArray(scalar: Int32(5))])[0].scalars(as: Int32.self) == [
        20, -15,
      ])
  }

  @Test func integerDivisionByZeroIsAnError() {
    expectRuntimeError(containing: "node 'n' (Div): integer division by zero") {
      _ = try run("Div", [NDArray([Int64(1)], shape: [1]), NDArray([Int64(0)], shape: [1])])
    }
  }

  @Test func mixedTypesAreAnError() {
    expectRuntimeError(containing: "different types") {
      _ = try run("Add", [NDArray([Int64(1)], shape: [1]), floats([1], [1])])
    }
    expectRuntimeError(containing: "input 0 of type bool is not supported") {
      _ = try run("Add", [NDArray([true], shape: [1]), NDArray([true], shape: [1])])
    }
  }
}

@Suite struct ActivationTests {
  let x = floats([-2, -0.5, 0, 0.5, 2], [5])

  @Test func relu() throws { expectClose(try runFloat("Relu", [x]), [0, 0, 0, 0.5, 2], shape: [5]) }

  @Test func leakyRelu() throws {
    expectClose(try runFloat("LeakyRelu", [x]), [-0.02, -0.005, 0, 0.5, 2], shape: [5])
    expectClose(try runFloat("LeakyRelu", [x], attributes: [.float("alpha", 0.5)]), [-1, -0.25, 0, 0.5, 2], shape: [5])
  }

  @Test func sigmoidAndTanh() throws {
    expectClose(
      try runFloat("Sigmoid", [floats([0, 1, -1, 100, -100], [5])]), [0.5, 0.7310586, 0.26894143, 1, 0], shape: [5])
    expectClose(try runFloat("Tanh", [floats([0, 1, -1, 30], [4])]), [0, 0.7615942, -0.7615942, 1], shape: [4])
  }

  @Test func clipFromInputs() throws {
    expectClose(
      try runFloat("Clip", [x, NDArray(scalar: Float(-1)), NDArray(scalar: Float(1))]), [-1, -0.5, 0, 0.5, 1],
      shape: [5])
    // Only a maximum: the min slot is omitted.
    expectClose(try runFloat("Clip", [x, nil, NDArray(scalar: Float(0))]), [-2, -0.5, 0, 0, 0], shape: [5])
    expectClose(try runFloat("Clip", [x]), [-2, -0.5, 0, 0.5, 2], shape: [5])
    let ints = try run(
      "Clip", [NDArray([Int64(-5), 3, 9], shape: [3]), NDArray(scalar: Int64(0)), NDArray(scalar: Int64(4))])
    #expect(ints[0].scalars(as: Int64.self) == [0, 3, 4])
  }

  @Test func clipFromAttributesBeforeOpset11() throws {
    let y = try runFloat("Clip", [x], attributes: [.float("min", 0), .float("max", 1)], opset: 6)
    expectClose(y, [0, 0, 0, 0.5, 1], shape: [5])
    expectRuntimeError(containing: "attribute 'min': is not supported") {
      _ = try runFloat("Clip", [x], attributes: [.float("min", 0)], opset: 13)
    }
  }

  @Test func wrongAttributeTypeIsAnError() {
    expectRuntimeError(containing: "node 'n' (LeakyRelu): attribute 'alpha': expected a float, found an int") {
      _ = try runFloat("LeakyRelu", [x], attributes: [.int("alpha", 1)])
    }
  }
}
