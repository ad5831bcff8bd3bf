import ArgumentParser
import Foundation
import Graph

/// `rebirth inspect MODEL`: what a model takes, gives and contains.
struct Inspect: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Show a model's inputs, outputs, operators, parameters, bytes and MACs.")

  enum Format: String, ExpressibleByArgument, CaseIterable {
    case text, json
  }

  @Argument(help: "The model to read (.onnx).")
  var model: String

  @Option(help: "Output format: text or json.")
  var format: Format = .text

  func run() throws {
    let loaded = try loadModel(model)
    let report = InspectReport(model: loaded, path: model)
    switch format {
    case .text: print(report.text, terminator: "")
    case .json: print(report.json)
    }
  }
}
