import ArgumentParser
import Foundation
import Passes

/// `rebirth passes`: the pass catalogue.
struct ListPasses: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "passes",
    abstract: "List every pass: exact or approximate, default, summary and options.",
    discussion: """
      Passes run in the order listed. 'default' passes form the exact preset, which
      'rebirth optimize' runs unless --passes, --preset, --enable or --disable say otherwise.

      Examples:
        rebirth passes
        rebirth passes --format json
      """)

  enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

  @Option(help: "Output format: text or json.")
  var format: Format = .text

  func run() {
    print(format == .json ? PassCatalogue.json : PassCatalogue.text, terminator: "")
  }
}

/// The catalogue of registered passes, as text and JSON.
enum PassCatalogue {
  struct Entry: Codable {
    struct Option: Codable {
      var key: String
      var type: String
      var `default`: String
      var summary: String
    }
    var name: String
    var exact: Bool
    var defaultOn: Bool
    /// Whether a pipeline for .tmf output runs it by default.
    var defaultOnForTMF: Bool
    /// Whether a pipeline for .onnx output with --allow-contrib-ops runs it by default.
    var defaultOnWithContribOps: Bool
    var preset: String?
    var summary: String
    var options: [Option]
    var targetNote: String?
  }

  static var entries: [Entry] {
    PassRegistry.all.map { pass in
      Entry(
        name: pass.name, exact: pass.isExact, defaultOn: pass.isDefault(for: .onnx),
        defaultOnForTMF: pass.isDefault(for: .tmf), defaultOnWithContribOps: pass.isDefault(for: .onnxContribOps), preset: pass.preset?.rawValue, summary: pass.summary,
        options: pass.options.map { Entry.Option(key: $0.key, type: $0.kind.rawValue, default: $0.defaultValue, summary: $0.summary) },
        targetNote: pass.targetNote)
    }
  }

  static var json: String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return String(decoding: try! encoder.encode(entries), as: UTF8.self) + "\n"
  }

  static var text: String {
    let width = entries.map { $0.name.count }.max() ?? 0
    var out = ""
    for e in entries {
      let kind = e.exact ? "exact" : "approx"
      var when: String
      if e.defaultOn { when = "default" } else if let p = e.preset { when = "--preset \(p)" } else { when = "--enable only" }
      if e.defaultOnForTMF && !e.defaultOn { when = "tmf default" }
      if e.defaultOnWithContribOps && !e.defaultOn && !e.defaultOnForTMF { when = "contrib default" }
      out += e.name.padding(toLength: width + 2, withPad: " ", startingAt: 0)
      out += kind.padding(toLength: 8, withPad: " ", startingAt: 0)
      out += when.padding(toLength: 16, withPad: " ", startingAt: 0)
      out += e.summary + "\n"
      for o in e.options {
        out += String(repeating: " ", count: width + 4) + "\(e.name).\(o.key)=\(o.type) (default \(o.default)): \(o.summary)\n"
      }
      if let note = e.targetNote { out += String(repeating: " ", count: width + 4) + "note: \(note)\n" }
    }
    return out
  }
}
