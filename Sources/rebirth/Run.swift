import ArgumentParser
import Foundation
import Graph
import Runtime

/// `rebirth run MODEL --input x=x.npy ... --output DIR`: runs a model on NumPy inputs.
struct Run: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run a model with rebirth's runtime on NumPy inputs and write its outputs as .npy files.",
    discussion: """
      Inputs come from .npy files (--input NAME=FILE.npy) and .npz archives
      (--inputs FILE.npz, one member per input); each must have the element type
      the model declares and a shape its dims allow. Every output is written as
      DIR/<name>.npy, where every character of the name other than letters,
      digits, '.', '_' and '-' becomes '_' (with --output FILE.npz, all outputs
      go into one archive). Nothing is written unless every output is computed.

      .npy files of format 1.0, 2.0 and 3.0 are read, little- or big-endian, in
      C order, with dtypes f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1; .npz members may
      be stored or deflated.

      Examples:
        rebirth run model.onnx --input data=image.npy --output out/
        rebirth run model.onnx --inputs batch.npz --output results.npz
        rebirth run --list-ops                        # operators the runtime implements
      """)

  @Argument(help: "The model to run (.onnx or .tmf).")
  var model: String?

  @OptionGroup var feeds: FeedOptions

  @Option(
    help: ArgumentHelp(
      "Where to write the outputs: a directory (created if missing; default: the current one), or a .npz file.",
      valueName: "dir"))
  var output: String?

  @Option(help: "Threads for the runtime and BLAS (default: every core).")
  var threads: Int?

  @Flag(help: "Print the operators the runtime implements, one per line, and exit.")
  var listOps = false

  func run() throws {
    if listOps {
      guard model == nil && feeds.isEmpty && output == nil else {
        throw CLIError.usage("--list-ops takes no model, inputs or output")
      }
      for op in KernelRegistry.standard.operators { print(op) }
      return
    }
    guard let model else { throw CLIError.usage("missing the model: rebirth run MODEL --input NAME=FILE.npy ...") }
    let threads = try threadCount(threads)
    let loaded = try LoadedModel(path: model, threads: threads)
    let given = try readFeeds(feeds, for: loaded)
    try checkFeeds(given, for: loaded)
    let outputs = try loaded.run(given.mapValues(\.array))
    let ordered = loaded.session.outputNames.compactMap { name in outputs[name].map { (name: name, array: $0) } }
    try write(ordered)
  }

  private func write(_ outputs: [(name: String, array: NDArray)]) throws(CLIError) {
    let destination = output ?? "."
    if destination.lowercased().hasSuffix(".npz") {
      let bytes: [UInt8]
      do { bytes = try NumPyArchive.encode(outputs) } catch { throw .badModel("\(destination): \(error.message)") }
      try writeFilesAtomically([(destination, bytes)])
      for (name, array) in outputs { print("\(name): \(array.dtype)\(shapeText(array.shape)) -> \(destination)") }
      return
    }
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: destination, isDirectory: &isDirectory) {
      guard isDirectory.boolValue else {
        throw CLIError.usage("--output \(destination): exists and is not a directory (give a directory or a .npz file)")
      }
    } else {
      do {
        try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
      } catch {
        throw .badModel("\(destination): cannot create the directory: \((error as NSError).localizedDescription)")
      }
    }
    var files: [(path: String, bytes: [UInt8])] = []
    var owner: [String: String] = [:]
    for (name, array) in outputs {
      let fileName = sanitizedFileName(name) + ".npy"
      if let other = owner[fileName] {
        throw .badModel("outputs '\(other)' and '\(name)' would both be written to \(fileName)")
      }
      owner[fileName] = name
      let path = destination.hasSuffix("/") ? destination + fileName : destination + "/" + fileName
      do {
        files.append((path, try NumPyFile.encode(array)))
      } catch {
        throw .badModel("output '\(name)': \(error.message)")
      }
    }
    try writeFilesAtomically(files)
    for ((name, array), file) in zip(outputs, files) {
      print("\(name): \(array.dtype)\(shapeText(array.shape)) -> \(file.path)")
    }
  }
}
