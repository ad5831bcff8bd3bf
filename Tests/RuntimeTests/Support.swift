import Graph
import Linalg
import Testing

@testable import Runtime

/// Builds a graph with one node reading `inputs` (graph inputs `x0`, `x1`, …; nil omits a slot;
/// `constants` become initializers instead) and runs it on one thread.
func run(
  _ opType: String, _ inputs: [NDArray?], constants: [Int: NDArray] = [:], attributes: [Attribute] = [],
  outputs: Int = 1, opset: Int = 17
) throws -> [NDArray] {
  var g = Graph(name: opType)
  var feeds: [String: NDArray] = [:]
  var ids: [ValueID?] = []
  for (i, x) in inputs.enumerated() {
    let name = "x\(i)"
    if let c = constants[i] {
      ids.append(try g.addInitializer(name: name, c.toTensor()))
    } else if let x {
      ids.append(try g.addInput(name: name, type: nil))
      feeds[name] = x
    } else {
      ids.append(nil)
    }
  }
  let names = (0..<outputs).map { "y\($0)" }
  let node = try g.addNode(opType: opType, name: "n", inputs: ids, outputs: names, attributes: attributes)
  for output in g[node].outputs { g.addOutput(output!) }
  let session = try Session(graph: g, opset: opset, options: SessionOptions(threadCount: 1))
  return try session.run(feeds, fetching: names)
}

/// Runs a one-output node and returns its float32 output.
func runFloat(
  _ opType: String, _ inputs: [NDArray?], constants: [Int: NDArray] = [:], attributes: [Attribute] = [], opset: Int = 17
) throws -> NDArray {
  try run(opType, inputs, constants: constants, attributes: attributes, opset: opset)[0]
}

func floats(_ values: [Float], _ shape: [Int]) -> NDArray { NDArray(values, shape: shape) }

/// 0, 1, 2, … as float32 of `shape`.
func iota(_ shape: [Int], from start: Float = 0, step: Float = 1) -> NDArray {
  let n = shape.reduce(1, *)
  return NDArray((0..<n).map { start + Float($0) * step }, shape: shape)
}

/// Deterministic pseudo-random floats in [-1, 1).
func random(_ shape: [Int], seed: UInt64) -> NDArray {
  var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
  let n = shape.reduce(1, *)
  var values: [Float] = []
  values.reserveCapacity(n)
  for _ in 0..<n {
    state ^= state << 13
    state ^= state >> 7
    state ^= state << 17
    values.append(Float(state >> 40) / Float(1 << 23) - 1)
  }
  return NDArray(values, shape: shape)
}

extension Attribute {
  static func int(_ name: String, _ v: Int) -> Attribute { Attribute(name, .int(Int64(v))) }
  static func ints(_ name: String, _ v: [Int]) -> Attribute { Attribute(name, .ints(v.map { Int64($0) })) }
  static func float(_ name: String, _ v: Float) -> Attribute { Attribute(name, .float(v)) }
  static func string(_ name: String, _ v: String) -> Attribute { Attribute(name, .string(Array(v.utf8))) }
}

/// Expects `actual` to have `shape` and elements within `tolerance` (absolute plus relative).
func expectClose(
  _ actual: NDArray, _ expected: [Float], shape: [Int], tolerance: Float = 1e-5,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  #expect(actual.dtype == .float, sourceLocation: sourceLocation)
  #expect(actual.shape == shape, sourceLocation: sourceLocation)
  let values = actual.scalars(as: Float.self)
  #expect(values.count == expected.count, sourceLocation: sourceLocation)
  guard values.count == expected.count else { return }
  var worst = 0
  var worstError: Float = 0
  for i in values.indices {
    let error = abs(values[i] - expected[i]) / (1 + abs(expected[i]))
    if !(error <= worstError) {
      worst = i
      worstError = error.isNaN ? .infinity : error
    }
  }
  #expect(
    worstError <= tolerance, "element \(worst): \(values[worst]) vs expected \(expected[worst])",
    sourceLocation: sourceLocation)
}

func expectClose(
  _ actual: NDArray, _ expected: NDArray, tolerance: Float = 1e-5, sourceLocation: SourceLocation = #_sourceLocation
) {
  expectClose(
    actual, expected.scalars(as: Float.self), shape: expected.shape, tolerance: tolerance,
    sourceLocation: sourceLocation)
}

/// Expects `body` to throw a `RuntimeError` whose description contains `fragment`.
func expectRuntimeError(
  containing fragment: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
  do {
    try body()
    Issue.record("expected an error containing \"\(fragment)\"", sourceLocation: sourceLocation)
  } catch let error as RuntimeError {
    #expect(error.description.contains(fragment), "\(error.description)", sourceLocation: sourceLocation)
  } catch {
    Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
  }
}
