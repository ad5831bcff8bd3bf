import ArgumentParser
import Exporters
import Foundation
import Graph

/// `rebirth diff A B`: how two models' graphs differ.
struct Diff: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Show how two models' graphs differ: nodes removed, merged, added and changed, and the totals.",
    discussion: """
      Nodes are matched by name first, then by structure (same op type with the same output names,
      the same inputs, or the same readers). A matched node is changed when its op type, an
      attribute, a weight (by content) or the wiring of an input differs. A node of A that B has
      folded into a changed or new node is shown as merged into it. Long lists are grouped by op
      type unless --verbose is given.

      Examples:
        rebirth diff model.onnx optimized.onnx
        rebirth diff model.onnx optimized.onnx --format json
        rebirth diff model.onnx optimized.onnx --dot diff.dot && dot -Tpng diff.dot -o diff.png

      Exit status: 0 whether or not the models differ, 1 when a model is bad or the picture
      cannot be written, 2 on a usage error.
      """)

  enum Format: String, ExpressibleByArgument, CaseIterable {
    case text, json
  }

  @Argument(help: "The model before (.onnx).")
  var a: String

  @Argument(help: "The model after (.onnx).")
  var b: String

  @Option(help: "Output format: text or json.")
  var format: Format = .text

  @Option(help: ArgumentHelp("Also write a Graphviz picture of B, changes highlighted, to FILE.", valueName: "FILE"))
  var dot: String?

  @Flag(help: "List every node, even when a list is long enough to be grouped by op type.")
  var verbose = false

  func run() throws {
    var modelA = try loadModel(a), modelB = try loadModel(b)
    _ = modelA.inferShapes()
    _ = modelB.inferShapes()
    var comparison = GraphComparison(modelA, modelB)
    comparison.diff.a = a
    comparison.diff.b = b
    if let dot {
      let text = Graphviz.dot(modelB.graph, comparison: comparison, a: modelA.graph)
      do { try Data(text.utf8).write(to: URL(fileURLWithPath: dot), options: .atomic) } catch {
        throw CLIError.badModel("\(dot): cannot write: \(error.localizedDescription)")
      }
    }
    switch format {
    case .text: print(DiffText(diff: comparison.diff, verbose: verbose).text, terminator: "")
    case .json: print(DiffText.json(comparison.diff), terminator: "")
    }
  }
}

/// The text of `rebirth diff`.
struct DiffText {
  let diff: GraphDiff
  let verbose: Bool
  /// A list longer than this many lines is grouped by op type, unless `verbose`.
  static let groupingThreshold = 30

  static func json(_ diff: GraphDiff) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: (try? encoder.encode(diff)) ?? Data("{}".utf8), as: UTF8.self) + "\n"
  }

  var text: String {
    var out = "--- \(diff.a)\n+++ \(diff.b)\n"
    out += totals
    let ops = histogramChanges
    if !ops.isEmpty { out += "ops: " + ops.joined(separator: ", ") + "\n" }
    if diff.isEmpty {
      return out + "no differences (\(diff.unchangedCount) nodes matched)\n"
    }
    if !diff.interface.isEmpty {
      out += "interface:\n"
      for p in diff.interface { out += "  \(p.kind) \(p.name): \(p.before ?? "(none)") → \(p.after ?? "(none)")\n" }
    }
    out += section("removed", diff.removed.map { ("-", $0) })
    out += mergedSection
    out += section("added", diff.added.map { ("+", $0) })
    out += changedSection
    let how = "\(diff.matchedByName) by name, \(diff.matchedByStructure) by structure"
    out += "unchanged \(nodes(diff.unchangedCount)); matched \(diff.matchedByName + diff.matchedByStructure) (\(how))\n"
    return out
  }

  private var totals: String {
    let (x, y) = (diff.before, diff.after)
    let rows: [(String, Int, Int, (Int) -> String)] = [
      ("nodes", x.nodeCount, y.nodeCount, String.init),
      ("parameters", x.parameterCount, y.parameterCount, String.init),
      ("bytes", x.parameterBytes, y.parameterBytes, formatBytes),
      ("MACs", x.macs, y.macs, formatCount),
    ]
    var out = "                     A            B     change\n"
    for (label, p, q, format) in rows {
      out += label.padding(toLength: 12, withPad: " ", startingAt: 0)
      out += format(p).rightAligned(10) + format(q).rightAligned(13) + percentChange(p, q).rightAligned(11) + "\n"
    }
    return out
  }

  /// "BatchNormalization 53 → 0" for every op type whose count changed, largest change first.
  private var histogramChanges: [String] {
    let a = Dictionary(diff.before.opTypeHistogram.map { ($0.opType, $0.count) }, uniquingKeysWith: +)
    let b = Dictionary(diff.after.opTypeHistogram.map { ($0.opType, $0.count) }, uniquingKeysWith: +)
    let changed = Set(a.keys).union(b.keys).filter { a[$0] != b[$0] }
    return changed.sorted { x, y in
      let dx = abs((b[x] ?? 0) - (a[x] ?? 0)), dy = abs((b[y] ?? 0) - (a[y] ?? 0))
      return dx != dy ? dx > dy : x < y
    }.map { "\($0) \(a[$0] ?? 0) → \(b[$0] ?? 0)" }
  }

  private func grouped(_ lineCount: Int) -> Bool { !verbose && lineCount > Self.groupingThreshold }

  /// A list of nodes, one per line, or one line per op type when long.
  private func section(_ title: String, _ items: [(mark: String, node: GraphDiff.NodeRef)]) -> String {
    guard let mark = items.first?.mark else { return "" }
    guard grouped(items.count) else {
      return "\(title) \(nodes(items.count)):\n" + items.map { "  \($0.mark) \($0.node.label)\n" }.joined()
    }
    var out = "\(title) \(nodes(items.count)), by op type:\n"
    for (op, group) in groups(items.map(\.node), by: \.opType) {
      out += "  \(mark) \(op) ×\(group.count) (\(elided(group.map(\.shortName))))\n"
    }
    return out
  }

  private var mergedSection: String {
    let merges = diff.merged
    guard !merges.isEmpty else { return "" }
    guard grouped(merges.count) else {
      return "merged \(nodes(merges.count)):\n"
        + merges.map { "  \($0.node.label) → merged into \($0.into.label)\($0.intoAdded ? " (added)" : "")\n" }.joined()
    }
    var out = "merged \(nodes(merges.count)), by op type:\n"
    for (_, group) in groups(merges, by: { "\($0.node.opType)\n\($0.into.opType)" }) {
      let pairs = group.map { "\($0.node.shortName) → \($0.into.shortName)" }
      out += "  \(group[0].node.opType) ×\(group.count) → merged into \(group[0].into.opType) (\(elided(pairs)))\n"
    }
    return out
  }

  private var changedSection: String {
    let changes = diff.changed
    guard !changes.isEmpty else { return "" }
    let detailed = changes.map { ($0, details($0)) }
    guard grouped(detailed.reduce(0) { $0 + 1 + $1.1.count }) else {
      var out = "changed \(nodes(changes.count)):\n"
      for (change, lines) in detailed {
        out += "  ~ \(change.b.label)\n" + lines.map { "      \($0)\n" }.joined()
      }
      return out
    }
    var out = "changed \(nodes(changes.count)), by op type and change:\n"
    for (_, group) in groups(changes, by: { ([$0.b.opType] + kinds($0)).joined(separator: "\n") }) {
      let what = kinds(group[0]).joined(separator: ", ")
      out += "  ~ \(group[0].b.opType) ×\(group.count): \(what) (\(elided(group.map(\.b.shortName))))\n"
    }
    return out
  }

  /// One line per difference of a changed node.
  private func details(_ change: GraphDiff.Change) -> [String] {
    var lines: [String] = []
    if change.a.opType != change.b.opType { lines.append("op \(change.a.opType) → \(change.b.opType)") }
    if change.a.name != change.b.name { lines.append("name \(change.a.shortName) → \(change.b.shortName)") }
    for a in change.attributes { lines.append("\(a.name) \(a.before ?? "(unset)") → \(a.after ?? "(unset)")") }
    for i in change.inputs {
      let before = i.before ?? "", after = i.after ?? ""
      switch i.kind {
      case .weight:
        let name = before == after ? before : "\(before) → \(after):"
        let note = i.valuesChanged ? " (values changed)" : ""
        lines.append("\(name) \(i.beforeType ?? "?") → \(i.afterType ?? "?")\(note)")
      case .rewired: lines.append("input \(i.slot): \(before) → \(after) (rewired)")
      case .added: lines.append("input \(i.slot) added: \(after)" + (i.afterType.map { " \($0)" } ?? ""))
      case .removed: lines.append("input \(i.slot) removed: \(before)" + (i.beforeType.map { " \($0)" } ?? ""))
      }
    }
    return lines
  }

  /// What kinds of difference a change has, to group like changes: `pads`, `input 1 values`.
  private func kinds(_ change: GraphDiff.Change) -> [String] {
    var kinds: [String] = []
    if change.a.opType != change.b.opType { kinds.append("op from \(change.a.opType)") }
    kinds += change.attributes.map(\.name)
    for i in change.inputs {
      switch i.kind {
      case .weight: kinds.append("input \(i.slot) \(i.valuesChanged ? "values" : "type")")
      case .rewired: kinds.append("input \(i.slot) rewired")
      case .added: kinds.append("input \(i.slot) added")
      case .removed: kinds.append("input \(i.slot) removed")
      }
    }
    return kinds
  }

  /// Items grouped by a key, groups in the order of their first item.
  private func groups<T>(_ items: [T], by key: (T) -> String) -> [(String, [T])] {
    var order: [String] = [], members: [String: [T]] = [:]
    for item in items {
      let k = key(item)
      if members[k] == nil { order.append(k) }
      members[k, default: []].append(item)
    }
    return order.map { ($0, members[$0] ?? []) }
  }

  /// "a, b, c, …, z" for more than 4 names.
  private func elided(_ names: [String]) -> String {
    names.count <= 4 ? names.joined(separator: ", ") : (names.prefix(3) + ["…", names[names.count - 1]]).joined(separator: ", ")
  }

  private func nodes(_ n: Int) -> String { "\(n) node\(n == 1 ? "" : "s")" }

  private func percentChange(_ a: Int, _ b: Int) -> String {
    if a == b { return "0.0%" }
    guard a != 0 else { return "new" }
    return String(format: "%+.1f%%", Double(b - a) / Double(a) * 100)
  }
}

extension String {
  /// The string right-aligned in `width` columns.
  fileprivate func rightAligned(_ width: Int) -> String {
    count >= width ? self : String(repeating: " ", count: width - count) + self
  }
}
