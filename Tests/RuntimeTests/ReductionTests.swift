import Graph
import Testing

@testable import Runtime

@Suite struct ReductionTests {
  static func axes(_ values: [Int]) -> NDArray { NDArray(values.map { Int64($0) }, shape: [values.count]) }

  /// Runs Reduce* at `opset` with the axes as an attribute (before 13 for ReduceSum, 18 for the
  /// others) or a constant input.
  static func reduce(
    _ op: String, _ x: NDArray, axes: [Int]?, keepdims: Int? = nil, noop: Int? = nil, opset: Int = 18
  ) throws -> NDArray {
    var attributes: [Attribute] = []
    if let keepdims { attributes.append(.int("keepdims", keepdims)) }
    if let noop { attributes.append(.int("noop_with_empty_axes", noop)) }
    let axesAreInput = opset >= (op == "ReduceSum" ? 13 : 18)
    if axesAreInput {
      if let axes {
        return try run(op, [x, nil], constants: [1: Self.axes(axes)], attributes: attributes, opset: opset)[0]
      }
      return try run(op, [x], attributes: attributes, opset: opset)[0]
    }
    if let axes { attributes.append(.ints("axes", axes)) }
    return try run(op, [x], attributes: attributes, opset: opset)[0]
  }

  /// Reference reduction: each output element combines its input elements in order, in double.
  static func reference(
    _ x: NDArray, axes: Set<Int>, keepdims: Bool, initial: Double, _ combine: (Double, Double) -> Double,
    finish: (Double, Int) -> Double = { v, _ in v }
  ) -> (values: [Float], shape: [Int]) {
    let shape = x.shape
    let outShape = shape.indices.map { axes.contains($0) ? 1 : shape[$0] }
    let outCount = outShape.reduce(1, *)
    var acc = [Double](repeating: initial, count: outCount)
    let values = x.scalars(as: Float.self)
    let inStrides = ShapeArithmetic.strides(shape)
    let outStrides = ShapeArithmetic.strides(outShape)
    for flat in 0..<x.count {
      var o = 0
      for d in shape.indices where !axes.contains(d) { o += (flat / inStrides[d]) % shape[d] * outStrides[d] }
      acc[o] = combine(acc[o], Double(values[flat]))
    }
    let n = x.count / max(outCount, 1)
    let final = keepdims ? outShape : shape.indices.filter { !axes.contains($0) }.map { shape[$0] }
    return (acc.map { Float(finish($0, n)) }, final)
  }

  // MARK: Reduce*

  @Test func reduceSumAxesKeepdims() throws {
    let x = iota([2, 3, 4])
    expectClose(
      try Self.reduce("ReduceSum", x, axes: [1], opset: 13), [12, 15, 18, 21, 48, 51, 54, 57], shape: [2, 1, 4])
    expectClose(
      try Self.reduce("ReduceSum", x, axes: [-1], keepdims: 0, opset: 13), [6, 22, 38, 54, 70, 86], shape: [2, 3])
    expectClose(try Self.reduce("ReduceSum", x, axes: [0, 2], keepdims: 0, opset: 13), [60, 92, 124], shape: [3])
    expectClose(
      try Self.reduce("ReduceSum", x, axes: [2, -3], keepdims: 1, opset: 13), [60, 92, 124], shape: [1, 3, 1])
    expectClose(try Self.reduce("ReduceSum", x, axes: nil, opset: 13), [276], shape: [1, 1, 1])
    expectClose(try Self.reduce("ReduceSum", x, axes: nil, keepdims: 0, opset: 13), [276], shape: [])
    expectClose(try Self.reduce("ReduceSum", x, axes: [], keepdims: 0, opset: 13), [276], shape: [])
    // noop_with_empty_axes: the input unchanged.
    expectClose(try Self.reduce("ReduceSum", x, axes: nil, noop: 1, opset: 13), x)
    expectClose(try Self.reduce("ReduceSum", x, axes: [], noop: 1, opset: 13), x)
    // Axes as an attribute before opset 13.
    expectClose(
      try Self.reduce("ReduceSum", x, axes: [1], opset: 11), [12, 15, 18, 21, 48, 51, 54, 57], shape: [2, 1, 4])
    expectClose(try Self.reduce("ReduceSum", x, axes: nil, keepdims: 0, opset: 11), [276], shape: [])
    expectRuntimeError(containing: "attribute 'axes': is not supported") {
      _ = try run("ReduceSum", [x], attributes: [.ints("axes", [1])], opset: 13)
    }
    expectRuntimeError(containing: "attribute 'noop_with_empty_axes': is not supported") {
      _ = try run("ReduceMean", [x], attributes: [.int("noop_with_empty_axes", 1)], opset: 17)
    }
  }

  @Test func reduceOperations() throws {
    let x = iota([2, 3, 4])
    expectClose(
      try Self.reduce("ReduceMean", x, axes: [1], opset: 17), [4, 5, 6, 7, 16, 17, 18, 19], shape: [2, 1, 4])
    expectClose(
      try Self.reduce("ReduceMean", x, axes: [1]), [4, 5, 6, 7, 16, 17, 18, 19], shape: [2, 1, 4])
    expectClose(
      try Self.reduce("ReduceMax", x, axes: [1], keepdims: 0), [8, 9, 10, 11, 20, 21, 22, 23], shape: [2, 4])
    expectClose(
      try Self.reduce("ReduceMin", x, axes: [1], keepdims: 0, opset: 13), [0, 1, 2, 3, 12, 13, 14, 15], shape: [2, 4])
    let m = floats([1, 2, 3, 4], [2, 2])
    expectClose(try Self.reduce("ReduceProd", m, axes: [0]), [3, 8], shape: [1, 2])
    expectClose(try Self.reduce("ReduceProd", m, axes: nil, keepdims: 0), [24], shape: [])
    expectClose(try Self.reduce("ReduceLogSum", m, axes: [1], keepdims: 0), [1.0986123, 1.9459101], shape: [2])
    let n = floats([3, -4, -6, 8], [2, 2])
    expectClose(try Self.reduce("ReduceL2", n, axes: [1], keepdims: 0), [5, 10], shape: [2])
    expectClose(try Self.reduce("ReduceL1", n, axes: [1], keepdims: 0), [7, 14], shape: [2])
    expectClose(try Self.reduce("ReduceSumSquare", n, axes: [-1], keepdims: 0, opset: 13), [25, 100], shape: [2])
    expectClose(try Self.reduce("ReduceSumSquare", n, axes: [0], keepdims: 0), [45, 80], shape: [2])
    // Reducing only extents of 1 still prepares and finishes.
    expectClose(try Self.reduce("ReduceSumSquare", floats([-3, 2], [2, 1]), axes: [1]), [9, 4], shape: [2, 1])
    expectClose(try Self.reduce("ReduceL2", floats([-3, 2], [2, 1]), axes: [1], keepdims: 0), [3, 2], shape: [2])
    expectClose(try Self.reduce("ReduceMax", floats([-3, 2], [2, 1]), axes: [1], keepdims: 0), [-3, 2], shape: [2])
    // Rank 0.
    expectClose(try Self.reduce("ReduceSum", NDArray(scalar: Float(5)), axes: nil, opset: 13), [5], shape: [])
    expectClose(try Self.reduce("ReduceL2", NDArray(scalar: Float(-5)), axes: nil), [5], shape: [])
  }

  @Test func reduceNaNAndErrors() throws {
    let v = try Self.reduce("ReduceMax", floats([1, .nan, 3, 2], [2, 2]), axes: [1], keepdims: 0)
    let w = v.scalars(as: Float.self)
    #expect(w[0].isNaN && w[1] == 3)
    let u = try Self.reduce("ReduceMin", floats([1, .nan, 3, 2], [2, 2]), axes: [0], keepdims: 0)
    #expect(u.scalars(as: Float.self)[0] == 1 && u.scalars(as: Float.self)[1].isNaN)
    expectRuntimeError(containing: "axis 3 is out of range for rank 2") {
      _ = try Self.reduce("ReduceSum", floats([1, 2], [1, 2]), axes: [3], opset: 13)
    }
    expectRuntimeError(containing: "axis -1 is repeated") {
      _ = try Self.reduce("ReduceMax", floats([1, 2], [1, 2]), axes: [1, -1])
    }
    expectRuntimeError(containing: "axes (input 1) must be a 1-D int64 tensor") {
      _ = try run("ReduceSum", [floats([1, 2], [2]), floats([0], [1])], opset: 13)
    }
    expectRuntimeError(containing: "input 0 of type bool is not supported") {
      _ = try Self.reduce("ReduceSum", NDArray([true], shape: [1]), axes: nil, opset: 13)
    }
  }

  @Test func reduceEmpty() throws {
    let x = floats([], [2, 0, 3])
    expectClose(try Self.reduce("ReduceSum", x, axes: [1], opset: 13), [0, 0, 0, 0, 0, 0], shape: [2, 1, 3])
    expectClose(try Self.reduce("ReduceMean", x, axes: [1], keepdims: 0), [0, 0, 0, 0, 0, 0], shape: [2, 3])
    expectClose(try Self.reduce("ReduceProd", x, axes: [1], keepdims: 0), [1, 1, 1, 1, 1, 1], shape: [2, 3])
    expectClose(try Self.reduce("ReduceL2", x, axes: [1], keepdims: 0), [0, 0, 0, 0, 0, 0], shape: [2, 3])
    #expect(
      try Self.reduce("ReduceMax", x, axes: [1], keepdims: 0).scalars(as: Float.self)
        == .init(repeating: -.infinity, count: 6))
    #expect(
      try Self.reduce("ReduceMin", x, axes: [1], keepdims: 0).scalars(as: Float.self)
        == .init(repeating: .infinity, count: 6))
    // Nothing left to compute.
    #expect(try Self.reduce("ReduceSum", x, axes: [0], opset: 13).shape == [1, 0, 3])
    #expect(try Self.reduce("ReduceMax", x, axes: [2], keepdims: 0).shape == [2, 0])
    expectClose(try Self.reduce("ReduceSum", x, axes: nil, keepdims: 0, opset: 13), [0], shape: [])
    let ints = NDArray([Int64](), shape: [0, 2])
    #expect(try Self.reduce("ReduceMax", ints, axes: [0], keepdims: 0).scalars(as: Int64.self) == [.min, .min])
    #expect(try Self.reduce("ReduceMean", ints, axes: [0], keepdims: 0).scalars(as: Int64.self) == [0, 0])
  }

  @Test func reduceIntegersAndBools() throws {
    let x = NDArray([Int64(1), 2, -3, -4], shape: [2, 2])
    #expect(try Self.reduce("ReduceSum", x, axes: [1], keepdims: 0, opset: 13).scalars(as: Int64.self) == [3, -7])
    // Integer means truncate toward zero.
    #expect(try Self.reduce("ReduceMean", x, axes: [1], keepdims: 0).scalars(as: Int64.self) == [1, -3])
    #expect(try Self.reduce("ReduceMax", x, axes: [0], keepdims: 0).scalars(as: Int64.self) == [1, 2])
    #expect(try Self.reduce("ReduceProd", x, axes: nil, keepdims: 0).scalars(as: Int64.self) == [24])
    #expect(try Self.reduce("ReduceL1", x, axes: nil, keepdims: 0).scalars(as: Int64.self) == [10])
    #expect(try Self.reduce("ReduceL2", x, axes: nil, keepdims: 0).scalars(as: Int64.self) == [5])
    let wrap = NDArray([Int64.max, 1], shape: [2])
    #expect(try Self.reduce("ReduceSum", wrap, axes: nil, keepdims: 0, opset: 13).scalars(as: Int64.self) == [.min])
    let i32 = NDArray([Int32(5), 7, 9], shape: [3])
    #expect(try Self.reduce("ReduceMin", i32, axes: [0], keepdims: 1).scalars(as: Int32.self) == [5])
    let b = NDArray([true, false, false, false], shape: [2, 2])
    let any = try Self.reduce("ReduceMax", b, axes: [1], keepdims: 0, opset: 20)
    #expect(any.dtype == .bool && any.scalars(as: Bool.self) == [true, false])
    #expect(
      try Self.reduce("ReduceMin", b, axes: [0], keepdims: 0, opset: 20).scalars(as: Bool.self) == [false, false])
    let bytes = NDArray([UInt8(200), 3], shape: [2])
    #expect(try Self.reduce("ReduceMax", bytes, axes: nil, keepdims: 0).scalars(as: UInt8.self) == [200])
    #expect(
      try Self.reduce("ReduceSum", NDArray([2.5, 3.0], shape: [2]), axes: nil, opset: 13).scalars(as: Double.self) == [
        5.5
      ])
  }

  struct Case: Sendable, CustomTestStringConvertible {
    let shape: [Int]
    let axes: [Int]
    var testDescription: String { "\(shape) over \(axes)" }
  }

  @Test(arguments: [
    Case(shape: [3, 4, 5, 6], axes: [0]), Case(shape: [3, 4, 5, 6], axes: [1]), Case(shape: [3, 4, 5, 6], axes: [3]),
    Case(shape: [3, 4, 5, 6], axes: [0, 2]), Case(shape: [3, 4, 5, 6], axes: [1, 3]),
    Case(shape: [3, 4, 5, 6], axes: [0, 1, 3]), Case(shape: [3, 4, 5, 6], axes: [1, 2]),
    Case(shape: [3, 1, 5, 1], axes: [1, 2]), Case(shape: [2, 1, 7], axes: [0, 2]), Case(shape: [37], axes: [0]),
    Case(shape: [5, 1000], axes: [1]), Case(shape: [1000, 5], axes: [0]),
  ])
  func reductionsMatchReference(_ c: Case) throws {
    let x = random(c.shape, seed: 21)
    let set = Set(c.axes)
    for keep in [0, 1] {
      let sum = Self.reference(x, axes: set, keepdims: keep == 1, initial: 0, +)
      expectClose(
        try Self.reduce("ReduceSum", x, axes: c.axes, keepdims: keep, opset: 13), sum.values, shape: sum.shape,
        tolerance: 1e-5)
      let mean = Self.reference(x, axes: set, keepdims: keep == 1, initial: 0, +) { $0 / Double($1) }
      expectClose(
        try Self.reduce("ReduceMean", x, axes: c.axes, keepdims: keep), mean.values, shape: mean.shape, tolerance: 1e-5)
      let max = Self.reference(x, axes: set, keepdims: keep == 1, initial: -.infinity) { Swift.max($0, $1) }
      expectClose(try Self.reduce("ReduceMax", x, axes: c.axes, keepdims: keep), max.values, shape: max.shape)
      let min = Self.reference(x, axes: set, keepdims: keep == 1, initial: .infinity) { Swift.min($0, $1) }
      expectClose(try Self.reduce("ReduceMin", x, axes: c.axes, keepdims: keep), min.values, shape: min.shape)
      let l2 = Self.reference(x, axes: set, keepdims: keep == 1, initial: 0, { $0 + $1 * $1 }) { v, _ in v.squareRoot()
      }
      expectClose(try Self.reduce("ReduceL2", x, axes: c.axes, keepdims: keep), l2.values, shape: l2.shape)
      let prod = Self.reference(x, axes: set, keepdims: keep == 1, initial: 1, *)
      expectClose(
        try Self.reduce("ReduceProd", x, axes: c.axes, keepdims: keep), prod.values, shape: prod.shape, tolerance: 1e-5)
    }
  }

  @Test func reductionsOnSeveralThreads() throws {
    let context = KernelContext(label: NodeLabel(name: "n", opType: "ReduceSum"), inputs: [], threadCount: 4)
    // One long row split across threads.
    let long = random([300_000], seed: 8)
    let sum = try ReduceSumOperation.evaluate(long, axes: nil, keepDims: false, context)
    let exact = long.scalars(as: Float.self).reduce(0.0) { $0 + Double($1) }
    #expect(abs(Double(sum.scalars(as: Float.self)[0]) - exact) < 1e-2)
    // Rows and columns.
    let x = random([64, 300, 40], seed: 9)
    let set: Set<Int> = [1]
    let expected = Self.reference(x, axes: set, keepdims: false, initial: -.infinity) { Swift.max($0, $1) }
    expectClose(
      try ReduceMaxOperation.evaluate(x, axes: [1], keepDims: false, context), expected.values, shape: [64, 40])
    let last = Self.reference(x, axes: [2], keepdims: true, initial: 0, +)
    expectClose(
      try ReduceSumOperation.evaluate(x, axes: [-1], keepDims: true, context), last.values, shape: [64, 300, 1],
      tolerance: 1e-5)
  }

  // MARK: ArgMax, ArgMin

  static func arg(_ op: String, _ x: NDArray, axis: Int? = nil, keepdims: Int? = nil, last: Int? = nil) throws
    -> NDArray
  {
    var attributes: [Attribute] = []
    if let axis { attributes.append(.int("axis", axis)) }
    if let keepdims { attributes.append(.int("keepdims", keepdims)) }
    if let last { attributes.append(.int("select_last_index", last)) }
    return try run(op, [x], attributes: attributes, opset: 13)[0]
  }

  @Test func argMaxArgMin() throws {
    let x = floats([1, 5, 5, 7, 2, 7], [2, 3])
    let rows = try Self.arg("ArgMax", x, axis: 1, keepdims: 0)
    #expect(rows.dtype == .int64 && rows.shape == [2] && rows.scalars(as: Int64.self) == [1, 0])
    #expect(try Self.arg("ArgMax", x, axis: -1, keepdims: 0, last: 1).scalars(as: Int64.self) == [2, 2])
    #expect(try Self.arg("ArgMin", x, axis: 1, keepdims: 0).scalars(as: Int64.self) == [0, 1])
    let kept = try Self.arg("ArgMin", x, axis: 1)
    #expect(kept.shape == [2, 1] && kept.scalars(as: Int64.self) == [0, 1])
    // Along axis 0 (columns), with ties.
    let y = floats([1, 5, 7, 7, 5, 7], [2, 3])
    let columns = try Self.arg("ArgMax", y)
    #expect(columns.shape == [1, 3] && columns.scalars(as: Int64.self) == [1, 0, 0])
    #expect(try Self.arg("ArgMax", y, keepdims: 0, last: 1).scalars(as: Int64.self) == [1, 1, 1])
    #expect(try Self.arg("ArgMin", y, keepdims: 0, last: 1).scalars(as: Int64.self) == [0, 1, 1])
    // NaN is the extreme either way.
    let nan = floats([1, .nan, 3, .nan], [4])
    #expect(try Self.arg("ArgMax", nan, keepdims: 0).scalars(as: Int64.self) == [1])
    #expect(try Self.arg("ArgMax", nan, keepdims: 0, last: 1).scalars(as: Int64.self) == [3])
    #expect(try Self.arg("ArgMin", nan, keepdims: 0).scalars(as: Int64.self) == [1])
    #expect(try Self.arg("ArgMin", floats([.nan, 0, -1], [3]), keepdims: 0).scalars(as: Int64.self) == [0])
    // Integer types.
    let ints = NDArray([Int64(3), -9, 12, 12, 0, -9], shape: [3, 2])
    #expect(try Self.arg("ArgMax", ints, axis: 0, keepdims: 0).scalars(as: Int64.self) == [1, 1])
    #expect(try Self.arg("ArgMin", ints, axis: 0, keepdims: 0, last: 1).scalars(as: Int64.self) == [2, 2])
    #expect(try Self.arg("ArgMax", NDArray([Int32(1), 4, 2], shape: [3])).scalars(as: Int64.self) == [1])
    #expect(try Self.arg("ArgMax", NDArray([UInt8(1), 250], shape: [2])).scalars(as: Int64.self) == [1])
    // Wide column blocks.
    let wide = random([3, 2000], seed: 4)
    let values = wide.scalars(as: Float.self)
    var expected: [Int64] = []
    for i in 0..<2000 {
      var best = 0
      for r in 1..<3 where values[r * 2000 + i] > values[best * 2000 + i] { best = r }
      expected.append(Int64(best))
    }
    #expect(try Self.arg("ArgMax", wide, keepdims: 0).scalars(as: Int64.self) == expected)
  }

  @Test func argMaxEdgeCases() throws {
    #expect(try Self.arg("ArgMax", floats([], [0, 3]), axis: 1).shape == [0, 1])
    expectRuntimeError(containing: "axis 1 is empty") {
      _ = try Self.arg("ArgMax", floats([], [2, 0]), axis: 1)
    }
    expectRuntimeError(containing: "attribute 'axis': 2 is out of range for rank 2") {
      _ = try Self.arg("ArgMin", floats([1, 2], [1, 2]), axis: 2)
    }
    #expect(try Self.arg("ArgMax", floats([3], [1]), keepdims: 0).shape == [])
  }
}
