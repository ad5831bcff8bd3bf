import ArgumentParser
import Foundation
import Graph
import Runtime

/// The text or JSON form of a report.
enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
  case text, json
}

/// `rebirth verify A B`: runs two models on the same inputs and compares their outputs.
struct Verify: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run two models with rebirth's runtime on the same inputs and compare their outputs.",
    discussion: """
      Both models get the same inputs: the arrays of --inputs/--input, or else
      seeded random values made from A's declared input types (symbolic dims
      from --dim, else 1; integer inputs kept valid: Gather indices in [0, n),
      sequence lengths full, otherwise 0...4). Outputs are matched by name; an
      output only one model has is an error. Per output it prints:
        max abs err   max |a - b|
        max rel err   max |a - b| / max(max |a|, 1.17549435e-38)  (A: reference)
        cosine        a.b / (|a| |b|)
        argmax        rows whose argmax agrees, for [N,C] and [N,C,1,1] outputs
        rel l2 err    |a - b| / |a| over all elements (Euclidean norms)
      --tensor NAME compares an intermediate value both models compute, found
      by name (e.g. a factorized layer's output, whose rel l2 err is what the
      optimize report's per-layer output_error estimates); tensors are
      reported but do not decide the exit status.
      Exit status 1 when a float output's max rel error is past --tolerance, an
      integer or bool output differs at all, or an output's dtype or shape
      differs; 0 otherwise.

      Examples:
        rebirth verify model.onnx optimized.onnx
        rebirth verify model.onnx optimized.onnx --dim N=8 --seed 3 --format json
        rebirth verify model.onnx optimized.onnx --inputs x.npz --tolerance 1e-3
        rebirth verify model.onnx thin.onnx --inputs x.npz --tensor fc1_out --format json
      """)

  @Argument(help: "The reference model (A).")
  var a: String

  @Argument(help: "The model compared with it (B).")
  var b: String

  @OptionGroup var feeds: FeedOptions
  @OptionGroup var random: RandomInputOptions

  @Option(help: "The largest max rel error a float output may have.")
  var tolerance: Double = 1e-4

  @Option(help: "Threads for the runtime and BLAS (default: every core).")
  var threads: Int?

  @Option(
    name: .customLong("tensor"),
    help: ArgumentHelp(
      "An intermediate value both models compute, compared by name like an output but not counted for the exit status. Repeatable.",
      valueName: "name"))
  var tensors: [String] = []

  @Option(help: "Report format: text or json.")
  var format: ReportFormat = .text

  func run() throws {
    guard tolerance.isFinite && tolerance >= 0 else {
      throw CLIError.usage("--tolerance must be a non-negative number, not \(tolerance)")
    }
    let dims = try random.parsedDims()
    if !feeds.isEmpty && !dims.isEmpty {
      throw CLIError.usage("--dim applies to random inputs only, not with --input/--inputs")
    }
    let threads = try threadCount(threads)
    let modelA = try LoadedModel(path: a, threads: threads)
    let modelB = try LoadedModel(path: b, threads: threads)

    let namesA = modelA.session.outputNames, namesB = modelB.session.outputNames
    let onlyA = namesA.filter { !namesB.contains($0) }, onlyB = namesB.filter { !namesA.contains($0) }
    if !onlyA.isEmpty || !onlyB.isEmpty {
      var parts: [String] = []
      if !onlyA.isEmpty { parts.append("only A has \(onlyA.map { "'\($0)'" }.joined(separator: ", "))") }
      if !onlyB.isEmpty { parts.append("only B has \(onlyB.map { "'\($0)'" }.joined(separator: ", "))") }
      throw CLIError.badModel("\(a) and \(b) have different outputs: \(parts.joined(separator: "; "))")
    }

    // The inputs: given, or made up from A's declarations.
    let given: Feeds
    let inputSource: String
    if feeds.isEmpty {
      let made = try RandomInputs(model: modelA.model, dims: dims, seed: random.seed).make()
      given = made.mapValues { ($0, "random input") }
      inputSource = "random, seed \(random.seed)"
    } else {
      given = try readFeeds(feeds, for: modelA)
      inputSource = "given"
    }
    try checkFeeds(given, for: modelA)
    let namesOfB = Set(modelB.inputs.map(\.name))
    let givenB = given.filter { namesOfB.contains($0.key) }
    if let lacking = modelB.inputs.first(where: { $0.required && given[$0.name] == nil }) {
      throw CLIError.badModel(
        "\(b): input '\(lacking.name)' (\(lacking.typeText)) is not an input of \(a), so it gets no value")
    }
    try checkFeeds(givenB, for: modelB)

    let outA = try modelA.run(given.mapValues(\.array))
    let outB = try modelB.run(givenB.mapValues(\.array))
    let comparisons = namesA.map { OutputComparison(name: $0, a: outA[$0]!, b: outB[$0]!, tolerance: tolerance) }
    let tensorComparisons = try compareTensors(modelA, modelB, given.mapValues(\.array), givenB.mapValues(\.array))
    let fedInputs = modelA.inputs.compactMap { input in given[input.name].map { (input.name, $0.array) } }
    switch format {
    case .text:
      print(textReport(comparisons, inputs: fedInputs, inputSource: inputSource), terminator: "")
      if !tensorComparisons.isEmpty { print(tensorTable(tensorComparisons), terminator: "") }
    case .json: print(jsonReport(comparisons, tensors: tensorComparisons, inputs: fedInputs, inputSource: inputSource))
    }
    let failed = comparisons.filter { !$0.passed }
    if let first = failed.first {
      let why: String
      if let problem = first.problem {
        why = problem
      } else if first.exact {
        why = "\(first.differingElements) elements differ"
      } else {
        why = "max rel error \(number(first.maxRelError)) > tolerance \(number(tolerance))"
      }
      let more = failed.count > 1 ? " (and \(failed.count - 1) more outputs)" : ""
      throw CLIError(message: "verify failed: output '\(first.name)': \(why)\(more)", status: 1)
    }
  }

  /// The `--tensor` values of both models on the same inputs, compared (nothing when none asked).
  private func compareTensors(
    _ modelA: LoadedModel, _ modelB: LoadedModel, _ feedsA: [String: NDArray], _ feedsB: [String: NDArray]
  ) throws(CLIError) -> [OutputComparison] {
    guard !tensors.isEmpty else { return [] }
    var names: [String] = []
    for name in tensors where !names.contains(name) { names.append(name) }
    for (path, model) in [(a, modelA.model), (b, modelB.model)] where names.contains(where: { model.graph.value(named: $0) == nil }) {
      let missing = names.first { model.graph.value(named: $0) == nil }!
      throw CLIError.usage("--tensor \(missing): \(path) has no value named '\(missing)'")
    }
    let valuesA: [NDArray], valuesB: [NDArray]
    do { valuesA = try modelA.session.run(feedsA, fetching: names) } catch { throw .badModel("\(a): \(error)") }
    do { valuesB = try modelB.session.run(feedsB, fetching: names) } catch { throw .badModel("\(b): \(error)") }
    return names.indices.map { OutputComparison(name: names[$0], a: valuesA[$0], b: valuesB[$0], tolerance: .infinity) }
  }

  /// The `--tensor` comparisons as a text table.
  private func tensorTable(_ rows: [OutputComparison]) -> String {
    var table = [["tensor", "dtype", "shape", "max abs err", "max rel err", "rel l2 err", "cosine"]]
    for c in rows {
      if let problem = c.problem {
        table.append([c.name, "\(c.dtype)", shapeText(c.shape), "-", "-", "-", problem])
        continue
      }
      table.append([
        c.name, "\(c.dtype)", shapeText(c.shape), number(c.maxAbsError), number(c.maxRelError),
        c.relL2Error.map(number) ?? "nan", c.cosine.map { String(format: "%.6f", $0) } ?? "nan",
      ])
    }
    let widths = (0..<table[0].count).map { column in table.map { $0[column].count }.max()! }
    var out = "tensors (reported, not checked against the tolerance):\n"
    for row in table {
      out += zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
        .trimmingCharacters(in: .whitespaces) + "\n"
    }
    return out
  }

  private func textReport(_ rows: [OutputComparison], inputs: [(String, NDArray)], inputSource: String) -> String {
    var out = "A: \(a)\nB: \(b)\n"
    out += "inputs (\(inputSource)): "
    out += inputs.map { "\($0.0) \($0.1.dtype)\(shapeText($0.1.shape))" }.joined(separator: ", ") + "\n"
    var table = [["output", "dtype", "shape", "max abs err", "max rel err", "cosine", "argmax", "result"]]
    for c in rows {
      let result = c.passed ? "ok" : "FAIL"
      if let problem = c.problem {
        table.append([c.name, "\(c.dtype)", shapeText(c.shape), "-", "-", "-", "-", "FAIL: \(problem)"])
        continue
      }
      let argmax = c.argmaxRows.map { "\(c.argmaxMatches!)/\($0)" } ?? "-"
      let cosine = c.cosine.map { String(format: "%.6f", $0) } ?? "nan"
      let verdict = c.exact && c.differingElements > 0 ? "FAIL: \(c.differingElements) elements differ" : result
      table.append([
        c.name, "\(c.dtype)", shapeText(c.shape), number(c.maxAbsError), number(c.maxRelError), cosine, argmax, verdict,
      ])
    }
    let widths = (0..<table[0].count).map { column in table.map { $0[column].count }.max()! }
    for row in table {
      out += zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
        .trimmingCharacters(in: .whitespaces) + "\n"
    }
    let failed = rows.filter { !$0.passed }.count
    out +=
      failed == 0
      ? "passed: every output within tolerance \(number(tolerance))\n"
      : "FAILED: \(failed) of \(rows.count) outputs past tolerance \(number(tolerance)) or different\n"
    return out
  }

  private func jsonReport(
    _ rows: [OutputComparison], tensors tensorRows: [OutputComparison], inputs: [(String, NDArray)], inputSource: String
  ) -> String {
    struct Input: Encodable {
      let name: String
      let dtype: String
      let shape: [Int]
    }
    struct Output: Encodable {
      let name: String
      let dtype: String
      let shape: [Int]
      let max_abs_error: Double?
      let max_rel_error: Double?
      let cosine_similarity: Double?
      let rel_l2_error: Double?
      let l2_error: Double?
      let l2_reference: Double?
      let argmax_agreement: Double?
      let argmax_matches: Int?
      let argmax_rows: Int?
      let differing_elements: Int
      let exact: Bool
      let passed: Bool
      let problem: String?

      enum CodingKeys: String, CodingKey {
        case name, dtype, shape, max_abs_error, max_rel_error, cosine_similarity, rel_l2_error, l2_error, l2_reference
        case argmax_agreement
        case argmax_matches, argmax_rows, differing_elements, exact, passed, problem
      }

      /// Every key, with null for what is unknown or not finite (synthesized code would omit them).
      func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(dtype, forKey: .dtype)
        try c.encode(shape, forKey: .shape)
        try c.encode(max_abs_error, forKey: .max_abs_error)
        try c.encode(max_rel_error, forKey: .max_rel_error)
        try c.encode(cosine_similarity, forKey: .cosine_similarity)
        try c.encode(rel_l2_error, forKey: .rel_l2_error)
        try c.encode(l2_error, forKey: .l2_error)
        try c.encode(l2_reference, forKey: .l2_reference)
        try c.encode(argmax_agreement, forKey: .argmax_agreement)
        try c.encode(argmax_matches, forKey: .argmax_matches)
        try c.encode(argmax_rows, forKey: .argmax_rows)
        try c.encode(differing_elements, forKey: .differing_elements)
        try c.encode(exact, forKey: .exact)
        try c.encode(passed, forKey: .passed)
        try c.encode(problem, forKey: .problem)
      }
    }
    struct Document: Encodable {
      let a: String
      let b: String
      let tolerance: Double
      let relative_error: String
      let inputs_source: String
      let inputs: [Input]
      let outputs: [Output]
      let tensors: [Output]
      let passed: Bool
    }
    let finite = { (x: Double?) -> Double? in x.flatMap { $0.isFinite ? $0 : nil } }
    let encode = { (c: OutputComparison) in
      Output(
        name: c.name, dtype: "\(c.dtype)", shape: c.shape,
        max_abs_error: c.problem == nil ? finite(c.maxAbsError) : nil,
        max_rel_error: c.problem == nil ? finite(c.maxRelError) : nil,
        cosine_similarity: c.problem == nil ? finite(c.cosine) : nil,
        rel_l2_error: c.problem == nil ? finite(c.relL2Error) : nil,
        l2_error: c.problem == nil ? finite(c.l2Error) : nil, l2_reference: c.problem == nil ? finite(c.l2Reference) : nil,
        argmax_agreement: c.argmaxRows.map { $0 == 0 ? 1 : Double(c.argmaxMatches!) / Double($0) },
        argmax_matches: c.argmaxMatches, argmax_rows: c.argmaxRows, differing_elements: c.differingElements,
        exact: c.exact, passed: c.passed, problem: c.problem)
    }
    let doc = Document(
      a: a, b: b, tolerance: tolerance, relative_error: "max|a-b| / max(max|a|, 1.17549435e-38)",
      inputs_source: inputSource,
      inputs: inputs.map { Input(name: $0.0, dtype: "\($0.1.dtype)", shape: $0.1.shape) }, outputs: rows.map(encode),
      tensors: tensorRows.map(encode),
      passed: rows.allSatisfy(\.passed))
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return (try? encoder.encode(doc)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
  }
}

/// A number for reports: `0`, `3.2e-07`, `0.0125`, `inf`.
func number(_ x: Double) -> String {
  if x == 0 { return "0" }
  if x.isNaN { return "nan" }
  if x.isInfinite { return x > 0 ? "inf" : "-inf" }
  return String(format: "%.3g", x)
}
