import Graph
import Testing

@testable import Runtime

@Suite struct ComparisonTests {
  static func bools(_ x: NDArray) -> [Bool] { x.scalars(as: Bool.self) }

  /// The flat index in an operand of `shape` of output element `flat` of the broadcast `output`.
  static func sourceIndex(_ flat: Int, output: [Int], shape: [Int]) -> Int {
    var rest = flat
    var result = 0
    var scale = 1
    for d in stride(from: output.count - 1, through: 0, by: -1) {
      let i = rest % output[d]
      rest /= output[d]
      let k = d - (output.count - shape.count)
      if k >= 0 {
        result += (shape[k] == 1 ? 0 : i) * scale
        scale *= shape[k]
      }
    }
    return result
  }

  /// Runs a one-node graph on `threads` threads.
  static func runThreaded(_ opType: String, _ inputs: [NDArray], threads: Int) throws -> NDArray {
    var g = Graph(name: opType)
    var feeds: [String: NDArray] = [:]
    var ids: [ValueID?] = []
    for (i, x) in inputs.enumerated() {
      ids.append(try g.addInput(name: "x\(i)", type: nil))
      feeds["x\(i)"] = x
    }
    let node = try g.addNode(opType: opType, name: "n", inputs: ids, outputs: ["y"])
    g.addOutput(g[node].outputs[0]!)
    let session = try Session(graph: g, opset: 17, options: SessionOptions(threadCount: threads))
    return try session.run(feeds, fetching: ["y"])[0]
  }

  // MARK: Comparisons

  @Test func comparisonsBroadcast() throws {
    let a = floats([1, 2], [2, 1])
    let b = floats([1, 2, 3], [3])
    #expect(Self.bools(try run("Less", [a, b])[0]) == [false, true, true, false, false, true])
    #expect(Self.bools(try run("Greater", [a, b])[0]) == [false, false, false, true, false, false])
    #expect(Self.bools(try run("Equal", [a, b])[0]) == [true, false, false, false, true, false])
    #expect(Self.bools(try run("LessOrEqual", [a, b])[0]) == [true, true, true, false, true, true])
    #expect(Self.bools(try run("GreaterOrEqual", [a, b])[0]) == [true, false, false, true, true, false])
    let y = try run("Less", [a, b])[0]
    #expect(y.dtype == .bool && y.shape == [2, 3])
  }

  @Test func floatComparisonsFollowIEEE() throws {
    let a = floats([.nan, 0, -0.0, .nan, -.infinity], [5])
    let b = floats([.nan, -0.0, 0, 1, .infinity], [5])
    #expect(Self.bools(try run("Equal", [a, b])[0]) == [false, true, true, false, false])
    #expect(Self.bools(try run("Less", [a, b])[0]) == [false, false, false, false, true])
    #expect(Self.bools(try run("GreaterOrEqual", [a, b])[0]) == [false, true, true, false, false])
  }

  @Test func integerAndBoolComparisons() throws {
    let a = NDArray([Int64.min, -1, 5, Int64.max], shape: [4])
    let b = NDArray([Int64(-1)], shape: [])
    #expect(Self.bools(try run("Greater", [a, b])[0]) == [false, false, true, true])
    #expect(Self.bools(try run("Equal", [a, b])[0]) == [false, true, false, false])
    let c = NDArray([Int32(3), -4], shape: [2])
    #expect(Self.bools(try run("LessOrEqual", [c, NDArray([Int32(3)], shape: [1])])[0]) == [true, true])
    let t = NDArray([true, false, true, false], shape: [4])
    let u = NDArray([true, true, false, false], shape: [4])
    #expect(Self.bools(try run("Equal", [t, u], opset: 19)[0]) == [true, false, false, true])
    #expect(Self.bools(try run("Less", [t, u])[0]) == [false, true, false, false])
    let bytes = NDArray([UInt8(200), 3], shape: [2])
    #expect(Self.bools(try run("Greater", [bytes, NDArray([UInt8(100)], shape: [1])])[0]) == [true, false])
    #expect(
      Self.bools(try run("Less", [NDArray([-1.5, 2], shape: [2]), NDArray([0.0], shape: [1])])[0]) == [true, false])
  }

  @Test func comparisonErrorsAndEmpty() throws {
    #expect(try run("Equal", [floats([], [0, 3]), floats([1, 2, 3], [3])])[0].shape == [0, 3])
    expectRuntimeError(containing: "inputs have different types float and int64") {
      _ = try run("Equal", [floats([1], [1]), NDArray([Int64(1)], shape: [1])])
    }
    expectRuntimeError(containing: "cannot broadcast [2] with [3]") {
      _ = try run("Less", [floats([1, 2], [2]), floats([1, 2, 3], [3])])
    }
  }

  // MARK: Logical operators

  @Test func logicalOperators() throws {
    let a = NDArray([false, true], shape: [2, 1])
    let b = NDArray([false, true], shape: [2])
    #expect(Self.bools(try run("And", [a, b])[0]) == [false, false, false, true])
    #expect(Self.bools(try run("Or", [a, b])[0]) == [false, true, true, true])
    #expect(Self.bools(try run("Xor", [a, b])[0]) == [false, true, true, false])
    let not = try run("Not", [NDArray([true, false, false], shape: [3])])[0]
    #expect(not.dtype == .bool && Self.bools(not) == [false, true, true])
    #expect(try run("And", [a, NDArray([Bool](), shape: [0])])[0].shape == [2, 0])
    expectRuntimeError(containing: "input 1 of type float is not supported") {
      _ = try run("Or", [a, floats([1], [1])])
    }
    expectRuntimeError(containing: "input 0 of type int64 is not supported") {
      _ = try run("Not", [NDArray([Int64(1)], shape: [1])])
    }
  }

  // MARK: Where

  @Test func whereBroadcastsThreeWays() throws {
    let c = NDArray([true, false, true], shape: [1, 3])
    let x = floats([1, 2], [2, 1])
    let y = floats([9], [])
    expectClose(try runFloat("Where", [c, x, y]), [1, 9, 1, 2, 9, 2], shape: [2, 3])

    let shapes: [([Int], [Int], [Int])] = [
      ([2, 1, 1], [1, 3, 1], [1, 1, 2]), ([3], [2, 3], [2, 1]), ([], [4], [2, 4]), ([2, 3, 4], [2, 3, 4], [2, 3, 4]),
      ([4], [], []), ([5, 1], [1, 6], [5, 6]), ([1, 1], [3, 1, 7], [7]),
    ]
    for (cs, xs, ys) in shapes {
      let cn = cs.reduce(1, *)
      let cond = NDArray((0..<cn).map { ($0 * 7 + 3) % 3 != 0 }, shape: cs)
      let xv = random(xs, seed: 5)
      let yv = random(ys, seed: 6)
      let out = try runFloat("Where", [cond, xv, yv])
      let shape = BinaryBroadcast.shape(BinaryBroadcast.shape(cs, xs)!, ys)!
      let (cb, xf, yf) = (Self.bools(cond), xv.scalars(as: Float.self), yv.scalars(as: Float.self))
      let expected = (0..<shape.reduce(1, *)).map { i in
        cb[Self.sourceIndex(i, output: shape, shape: cs)]
          ? xf[Self.sourceIndex(i, output: shape, shape: xs)] : yf[Self.sourceIndex(i, output: shape, shape: ys)]
      }
      #expect(out.shape == shape)
      #expect(out.scalars(as: Float.self) == expected, "\(cs) \(xs) \(ys)")
    }
  }

  @Test func whereOtherTypes() throws {
    let c = NDArray([true, false], shape: [2])
    let i64 = try run("Where", [c, NDArray([Int64(1), 2], shape: [2]), NDArray([Int64(-7)], shape: [1])])[0]
    #expect(i64.dtype == .int64 && i64.scalars(as: Int64.self) == [1, -7])
    let b = try run("Where", [c, NDArray([true], shape: [1]), NDArray([true, true], shape: [2])])[0]
    #expect(Self.bools(b) == [true, true])
    let u8 = try run("Where", [c, NDArray([UInt8(1)], shape: []), NDArray([UInt8(2)], shape: [])])[0]
    #expect(u8.scalars(as: UInt8.self) == [1, 2])
    let d = try run("Where", [c, NDArray([1.5, 2.5], shape: [2]), NDArray([0.0], shape: [])])[0]
    #expect(d.scalars(as: Double.self) == [1.5, 0])
    let i16 = try run("Where", [c, NDArray([Int16(3)], shape: []), NDArray([Int16(-3)], shape: [])])[0]
    #expect(i16.scalars(as: Int16.self) == [3, -3])
    #expect(try run("Where", [NDArray([Bool](), shape: [0]), floats([1], [1]), floats([2], [1])])[0].shape == [0])
    expectRuntimeError(containing: "X is float and Y is int64") {
      _ = try run("Where", [c, floats([1], [1]), NDArray([Int64(1)], shape: [1])])
    }
    expectRuntimeError(containing: "input 0 of type float is not supported") {
      _ = try run("Where", [floats([1], [1]), floats([1], [1]), floats([2], [1])])
    }
    expectRuntimeError(containing: "cannot broadcast condition [3], X [2] and Y [1]") {
      _ = try run("Where", [NDArray([true, true, true], shape: [3]), floats([1, 2], [2]), floats([2], [1])])
    }
  }

  @Test func whereOnSeveralThreads() throws {
    // Large enough to be split: one long row, then many rows.
    let n = 100_000
    let cond = NDArray((0..<n).map { $0 % 3 == 0 }, shape: [n])
    let x = iota([n])
    let y = floats([-1], [])
    let out = try Self.runThreaded("Where", [cond, x, y], threads: 4).scalars(as: Float.self)
    let expected: [Float] = (0..<n).map { (i: Int) -> Float in i % 3 == 0 ? Float(i) : -1 }
    #expect(out == expected)
    let rows = NDArray((0..<400).map { $0 % 2 == 0 }, shape: [400, 1])
    let wide = iota([1, 300])
    let many = try Self.runThreaded("Where", [rows, wide, y], threads: 4).scalars(as: Float.self)
    let expectedMany: [Float] = (0..<(400 * 300)).map { (i: Int) -> Float in (i / 300) % 2 == 0 ? Float(i % 300) : -1 }
    #expect(many == expectedMany)
  }

  @Test func multiBroadcastPlan() {
    let plan = MultiBroadcast([[2, 3, 4, 5], [3, 1, 1], [1]])!
    #expect(plan.outputShape == [2, 3, 4, 5])
    #expect(plan.dims == [2, 3, 20])
    #expect(plan.strides == [[60, 20, 1], [0, 1, 0], [0, 0, 0]])
    #expect(MultiBroadcast([[3], [4]]) == nil)
    #expect(MultiBroadcast([[], []])!.dims == [1])
    var visited: [[Int]] = []
    MultiBroadcast([[2, 1], [1, 3], [2, 3]])!.forEachRow(0..<2) { offsets, o in visited.append(offsets + [o]) }
    #expect(visited == [[0, 0, 0, 0], [1, 0, 3, 3]])
  }
}
