import Exporters
import Foundation
import Graph
import Passes

/// What `rebirth optimize` did: the summary it prints, and the full report of `--report`.
struct OptimizeReport: Codable {
  var input: String
  var output: String
  /// The preset, unless `--passes` chose the passes.
  var preset: String?
  var passes: [String]
  var maxRewrites: Int?
  var before: GraphStatistics
  var after: GraphStatistics
  var run: PipelineReport
  /// Where the calibration samples came from, when there were any.
  var calibration: String?
  /// `--verify`: the optimized model's relative output error against the original.
  var outputError: Double?
  /// `.tmf` with `--weights` other than fp32: the encoding, and each encoded tensor.
  var weights: String? = nil
  var encodedTensors: [TMFEncodedTensor]? = nil

  var json: String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try! encoder.encode(self), as: UTF8.self) + "\n"
  }

  /// The short summary: totals, the op histogram's difference, and one line per pass.
  var summaryText: String {
    var out = "\(input) → \(output)"
    let count = "\(passes.count) pass\(passes.count == 1 ? "" : "es")"
    out += preset.map { " (preset \($0), \(count))\n" } ?? " (\(count) chosen)\n"
    out += totalsTable
    let histogram = histogramChanges
    if !histogram.isEmpty { out += "ops: " + histogram.joined(separator: ", ") + "\n" }
    out += passTable
    if run.stoppedAtRewriteLimit, let maxRewrites {
      out += "stopped after \(maxRewrites) rewrite\(maxRewrites == 1 ? "" : "s") (--max-rewrites)\n"
    }
    if let calibration { out += "calibration: \(calibration)\n" }
    out += weightsText
    if let outputError { out += "output error (--verify): " + String(format: "%.3g", outputError) + " relative\n" }
    if !run.skipped.isEmpty { out += "skipped: \(run.skipped.count) approximate rewrite\(run.skipped.count == 1 ? "" : "s") (see --report)\n" }
    for warning in run.warnings { out += "warning: \(warning)\n" }
    return out
  }

  /// The summary, then every change with its provenance.
  var fullText: String {
    var out = summaryText
    out += "\nchanges (\(run.changes.count)):\n"
    for change in run.changes {
      out += "\(change.pass) [\(change.pattern)]: \(change.description)\n"
      if !change.removed.isEmpty { out += "    removed: " + change.removed.map(nodeText).joined(separator: ", ") + "\n" }
      if !change.created.isEmpty { out += "    created: " + change.created.map(nodeText).joined(separator: ", ") + "\n" }
      if !change.modified.isEmpty { out += "    modified: " + change.modified.map(nodeText).joined(separator: ", ") + "\n" }
      if !change.weights.isEmpty {
        out += "    weights: " + change.weights.map { "\($0.name) \($0.dtype)\(shapeText($0.shape))" }.joined(separator: ", ") + "\n"
      }
      if !change.removedValues.isEmpty {
        out += "    removed values: " + change.removedValues.joined(separator: ", ") + "\n"
      }
      if !change.metrics.isEmpty { out += "    " + metricsText(change.metrics) + "\n" }
    }
    if !run.skipped.isEmpty {
      out += "\nskipped (\(run.skipped.count)):\n"
      for change in run.skipped {
        out += "\(change.pass): \(change.description)\n"
        if !change.metrics.isEmpty { out += "    " + metricsText(change.metrics) + "\n" }
      }
    }
    return out
  }

  /// `--weights`: totals, then one line per encoded tensor with its relative error ‖W − Ŵ‖/‖W‖.
  private var weightsText: String {
    guard let weights, let tensors = encodedTensors else { return "" }
    let before = tensors.reduce(0) { $0 + $1.originalBytes }, after = tensors.reduce(0) { $0 + $1.bytes }
    var out = "weights: \(weights), \(tensors.count) tensor\(tensors.count == 1 ? "" : "s") encoded, "
    out += "\(formatBytes(before)) → \(formatBytes(after)); the others stay float32\n"
    let width = min(max(tensors.map { $0.name.count }.max() ?? 0, 6), 48)
    for t in tensors {
      out += "  " + t.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + t.encoding.padding(toLength: 9, withPad: " ", startingAt: 0)
      out += shapeText(t.shape).padding(toLength: 20, withPad: " ", startingAt: 0)
      out += "relative error " + String(format: "%.3g", t.relativeError) + "\n"
    }
    return out
  }

  private var totalsTable: String {
    let rows: [(String, Int, Int, (Int) -> String)] = [
      ("nodes", before.nodeCount, after.nodeCount, String.init),
      ("parameters", before.parameterCount, after.parameterCount, String.init),
      ("bytes", before.parameterBytes, after.parameterBytes, formatBytes),
      ("MACs", before.macs, after.macs, formatCount),
    ]
    var out = "            before        after     change\n"
    for (label, a, b, format) in rows {
      out += label.padding(toLength: 10, withPad: " ", startingAt: 0)
      out += format(a).leftPadded(to: 10) + format(b).leftPadded(to: 13) + percent(a, b).leftPadded(to: 11) + "\n"
    }
    if after.unknownMACNodes > 0 || before.unknownMACNodes > 0 {
      out += "          (MACs are lower bounds: some nodes have unknown shapes)\n"
    }
    return out
  }

  /// "BatchNormalization 53 → 0" for every op type whose count changed, largest change first.
  private var histogramChanges: [String] {
    let a = Dictionary(uniqueKeysWithValues: before.opTypeHistogram.map { ($0.opType, $0.count) })
    let b = Dictionary(uniqueKeysWithValues: after.opTypeHistogram.map { ($0.opType, $0.count) })
    let changed = Set(a.keys).union(b.keys).filter { a[$0] != b[$0] }
    return changed.sorted { x, y in
      let dx = abs((b[x] ?? 0) - (a[x] ?? 0)), dy = abs((b[y] ?? 0) - (a[y] ?? 0))
      return dx != dy ? dx > dy : x < y
    }.map { "\($0) \(a[$0] ?? 0) → \(b[$0] ?? 0)" }
  }

  private var passTable: String {
    guard !run.runs.isEmpty else { return "passes: none\n" }
    let width = max(run.runs.map { $0.pass.count }.max() ?? 0, 4)
    var out = "passes:\n"
    for r in run.runs {
      var line = "  " + r.pass.padding(toLength: width, withPad: " ", startingAt: 0)
      line += "\(r.changes) change\(r.changes == 1 ? "" : "s")".leftPadded(to: 13)
      line += (r.cleanup > 0 ? "+\(r.cleanup) dead" : "").leftPadded(to: 10)
      line += String(format: "%9.1f ms", r.seconds * 1000)
      if !r.options.isEmpty { line += "  (" + r.options.joined(separator: ", ") + ")" }
      out += line + "\n"
    }
    return out
  }

  private func metricsText(_ metrics: [String: Double]) -> String {
    metrics.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.4g", $0.value))" }.joined(separator: ", ")
  }

  private func nodeText(_ n: NodeSummary) -> String { n.label }
}

private func percent(_ a: Int, _ b: Int) -> String {
  if a == b { return "0.0%" }
  guard a != 0 else { return "new" }
  return String(format: "%+.1f%%", Double(b - a) / Double(a) * 100)
}

/// 4_100_000_000 → "4.10 G".
func formatCount(_ n: Int) -> String {
  let units: [(Double, String)] = [(1e12, " T"), (1e9, " G"), (1e6, " M"), (1e3, " k")]
  for (scale, unit) in units where Double(n) >= scale { return String(format: "%.2f", Double(n) / scale) + unit }
  return String(n)
}

extension String {
  func leftPadded(to width: Int) -> String {
    count >= width ? self : String(repeating: " ", count: width - count) + self
  }
}

/// A unified diff of two texts, line by line, with two lines of context around each change.
func unifiedDiff(_ old: String, _ new: String, context: Int = 2) -> String {
  let a = old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
  let b = new.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
  let difference = b.difference(from: a)
  var removed = Set<Int>(), inserted = Set<Int>()
  for change in difference {
    switch change {
    case .remove(let offset, _, _): removed.insert(offset)
    case .insert(let offset, _, _): inserted.insert(offset)
    }
  }
  // Walk both sides in step, emitting "-", "+" and " " lines; then keep only lines near a change.
  var lines: [(mark: Character, text: String)] = []
  var i = 0, j = 0
  while i < a.count || j < b.count {
    if i < a.count, removed.contains(i) {
      lines.append(("-", a[i])); i += 1
    } else if j < b.count, inserted.contains(j) {
      lines.append(("+", b[j])); j += 1
    } else {
      if i < a.count { lines.append((" ", a[i])) }
      i += 1; j += 1
    }
  }
  let changedIndices = lines.indices.filter { lines[$0].mark != " " }
  var keep = Set<Int>()
  for index in changedIndices { for k in max(0, index - context)...min(lines.count - 1, index + context) { keep.insert(k) } }
  var out = "", previous = -2
  for index in keep.sorted() {
    if index != previous + 1 { out += "@@\n" }
    out += "\(lines[index].mark) \(lines[index].text)\n"
    previous = index
  }
  return out
}
