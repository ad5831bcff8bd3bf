import Graph
import Passes
import Runtime
import Testing

/// What a pass did to a test graph.
public struct RewriteOutcome: Sendable {
  public let model: Model
  public let report: PipelineReport
  /// The rewritten model as the golden comparison printed it.
  public let text: String
}

/// How golden tests print graphs: no inferred types of intermediates (they are the shape
/// inference's business, not the pass's), small tensors inline, large ones by digest.
public let goldenTextOptions = TextOptions(maxInlineElements: 16, includeValueInfo: false)

/// Runs `pass` (through a one-pass pipeline, so the dead-code cleanup and the verifier run as in
/// `rebirth optimize`) on the model `input`, written in ONNX's textual syntax, and checks that
///   1. the result prints exactly as `expected` does (both printed by rebirth's printer, so
///      spacing in the test source does not matter), and
///   2. both models compute the same outputs on seeded random inputs, within `tolerance`
///      (max |a − b| / max(1, max |a|) per output).
/// `options` are pass options as `key: value`.
@discardableResult
public func assertRewrite(
  _ pass: any Pass.Type, options: [String: String] = [:], _ input: String, becomes expected: String,
  tolerance: Double = 1e-4, sourceLocation: SourceLocation = #_sourceLocation
) throws -> RewriteOutcome {
  let outcome = try runPass(pass, options: options, on: input)
  let golden = try Model(parsing: expected).text(options: goldenTextOptions)
  #expect(outcome.report.changes.contains { $0.pass == pass.name }, "\(pass.name) changed nothing", sourceLocation: sourceLocation)
  if outcome.text != golden {
    Issue.record("\(pass.name) produced\n\(outcome.text)\nexpected\n\(golden)", sourceLocation: sourceLocation)
  }
  try expectSameOutputs(try Model(parsing: input), outcome.model, tolerance: tolerance, sourceLocation: sourceLocation)
  return outcome
}

/// Runs `pass` on `input` and checks that it changed nothing: no change logged and the model
/// prints as before.
public func assertNoRewrite(
  _ pass: any Pass.Type, options: [String: String] = [:], _ input: String, sourceLocation: SourceLocation = #_sourceLocation
) throws {
  let outcome = try runPass(pass, options: options, on: input)
  let ownChanges = outcome.report.changes.filter { $0.pass == pass.name }
  #expect(ownChanges.isEmpty, "unexpected rewrites: \(ownChanges.map(\.description))", sourceLocation: sourceLocation)
  let before = try Model(parsing: input).text(options: goldenTextOptions)
  if ownChanges.isEmpty && outcome.text != before {
    Issue.record("the graph changed without a logged change:\n\(outcome.text)", sourceLocation: sourceLocation)
  }
}

/// Parses `input` and runs `pass` on it with the verifier after the pass.
public func runPass(_ pass: any Pass.Type, options: [String: String] = [:], on input: String) throws -> RewriteOutcome {
  var model = try Model(parsing: input)
  var step = PipelineStep(pass)
  for (key, value) in options.sorted(by: { $0.key < $1.key }) { try step.options.set(key, value) }
  let report = try Pipeline(steps: [step], verifyEach: true).run(&model)
  return RewriteOutcome(model: model, report: report, text: model.text(options: goldenTextOptions))
}

/// Runs both models with rebirth's runtime on the same seeded inputs and checks every output.
public func expectSameOutputs(
  _ a: Model, _ b: Model, tolerance: Double = 1e-4, seed: UInt64 = 1, sourceLocation: SourceLocation = #_sourceLocation
) throws {
  let feeds = try seededInputs(for: a, seed: seed)
  let options = SessionOptions(threadCount: 1)
  let expected = try Session(model: a, options: options).run(feeds)
  let actual = try Session(model: b, options: options).run(feeds)
  for (name, reference) in expected.sorted(by: { $0.key < $1.key }) {
    guard let value = actual[name] else {
      Issue.record("output '\(name)' is missing after the rewrite", sourceLocation: sourceLocation)
      continue
    }
    #expect(value.shape == reference.shape, "output '\(name)' shape", sourceLocation: sourceLocation)
    let x = testDoubles(reference), y = testDoubles(value)
    guard x.count == y.count else { continue }
    let scale = max(1, x.map(abs).max() ?? 0)
    let error = zip(x, y).map { abs($0 - $1) }.max() ?? 0
    #expect(error / scale <= tolerance, "output '\(name)': relative error \(error / scale)", sourceLocation: sourceLocation)
  }
}

/// Deterministic inputs for a test model: floats in [-2, 2), integers in [0, 4), booleans; symbolic
/// dims are 2 (a batch above 1 catches rewrites that assume a batch of 1).
public func seededInputs(for model: Model, seed: UInt64 = 1) throws -> [String: NDArray] {
  var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
  func next() -> UInt64 {
    state ^= state << 13
    state ^= state >> 7
    state ^= state << 17
    return state
  }
  var feeds: [String: NDArray] = [:]
  for input in model.graph.inputs {
    guard case .input(nil) = model.graph[input].definition,
      case .tensor(let dtype, let dims?)? = model.graph[input].type
    else { continue }
    let shape = dims.map { $0.value ?? 2 }
    let count = shape.reduce(1, *)
    switch dtype {
    case .float: feeds[model.graph[input].name] = NDArray((0..<count).map { _ in Float(next() % 4096) / 1024 - 2 }, shape: shape)
    case .int64: feeds[model.graph[input].name] = NDArray((0..<count).map { _ in Int64(next() % 4) }, shape: shape)
    case .int32: feeds[model.graph[input].name] = NDArray((0..<count).map { _ in Int32(next() % 4) }, shape: shape)
    case .bool: feeds[model.graph[input].name] = NDArray((0..<count).map { _ in next() % 2 == 0 }, shape: shape)
    default: throw TestInputError(message: "no test inputs of type \(dtype)")
    }
  }
  return feeds
}

struct TestInputError: Error { let message: String }

/// Deterministic float literals for writing weights inline in test graphs: `{0.25, -0.5, …}`.
public func floatLiteral(_ count: Int, seed: UInt64 = 7, scale: Float = 1) -> String {
  var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
  var values: [String] = []
  for _ in 0..<count {
    state ^= state << 13
    state ^= state >> 7
    state ^= state << 17
    values.append("\(Float(Int(state % 2001) - 1000) / 1000 * scale)")
  }
  return "{" + values.joined(separator: ", ") + "}"
}

private func testDoubles(_ a: NDArray) -> [Double] {
  switch a.dtype {
  case .float: return a.scalars(as: Float.self).map(Double.init)
  case .double: return a.scalars(as: Double.self)
  case .int64: return a.scalars(as: Int64.self).map(Double.init)
  case .int32: return a.scalars(as: Int32.self).map(Double.init)
  case .bool: return a.scalars(as: Bool.self).map { $0 ? 1 : 0 }
  default: return []
  }
}
