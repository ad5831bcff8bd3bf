import ArgumentParser
import Foundation
import Graph

/// `rebirth inspect MODEL`: what a model takes, gives and contains.
struct Inspect: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Show a model's inputs, outputs, operators, parameters, bytes and MACs.")

  enum Format: String, ExpressibleByArgument, CaseIterable {
    case text, json
    /// The whole model in ONNX's textual syntax (what `onnx.parser` reads); large tensors by shape and hash.
    case onnxText = "onnx-text"
  }

  @Argument(help: "The model to read (.onnx or .tmf).")
  var model: String

  @Option(help: "Output format: text or json (a summary), or onnx-text (the whole graph in ONNX's textual syntax).")
  var format: Format = .text

  func run() throws {
    let loaded = try loadModel(model)
    switch format {
    case .onnxText: print(loaded.text(), terminator: "")
    case .text: print(InspectReport(model: loaded, path: model).text, terminator: "")
    case .json: print(InspectReport(model: loaded, path: model).json)
    }
  }
}
