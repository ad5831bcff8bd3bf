import Exporters
import Foundation
import Graph
import Importers
import Runtime

/// The model file formats rebirth reads and writes, by file extension.
enum ModelFormat {
  case onnx
  case tmf

  init(path: String) throws(CLIError) {
    switch (path as NSString).pathExtension.lowercased() {
    case "onnx": self = .onnx
    case "tmf": self = .tmf
    default:
      throw .usage("\(path): unknown model format '.\((path as NSString).pathExtension)' (expected .onnx or .tmf)")
    }
  }
}

/// Reads a model, whatever its format, and checks the IR's invariants.
func loadModel(_ path: String) throws(CLIError) -> Model {
  let model: Model
  switch try ModelFormat(path: path) {
  case .onnx:
    do { model = try ONNXImporter.load(path: path) } catch { throw .badModel(error.description) }
  case .tmf:
    do { model = try TMFReader.load(path: path) } catch { throw .badModel(error.description) }
  }
  do { try model.graph.verify() } catch { throw .badModel("\(path): \(error.message)") }
  return model
}

/// Writes `model` to `path` so that a failure leaves nothing behind: everything is written to
/// temporary files beside the destination and renamed into place only when all of it succeeded.
///
/// `.tmf` files get `metadata` (producer, source digest, passes applied: see docs/tmf.md) and
/// their weights stored as `weights` says; when `readBack` is given, the written `.tmf` is opened
/// with the validating reader and handed to it before the rename (it proves the file, and
/// `--verify` measures the decoded weights), and a failure there leaves nothing behind either.
@discardableResult
func saveModel(
  _ model: Model, to path: String, externalData: Bool, allowContribOps: Bool = false, metadata: [MetadataEntry] = [],
  weights: TMFWeightOptions = TMFWeightOptions(), readBack: ((Model) throws(CLIError) -> Void)? = nil
) throws(CLIError) -> TMFWriteSummary? {
  let final = URL(fileURLWithPath: path)
  let temporary = final.deletingLastPathComponent()
    .appendingPathComponent(".\(final.lastPathComponent).rebirth-\(ProcessInfo.processInfo.processIdentifier).tmp")
  if try ModelFormat(path: path) == .tmf {
    let summary: TMFWriteSummary
    do { summary = try TMFWriter.write(model, to: temporary.path, metadata: metadata, weights: weights) } catch {
      try? FileManager.default.removeItem(at: temporary)
      throw .badModel("\(path): \(error.message)")
    }
    if let readBack {
      let written: Model
      do { written = try TMFReader.load(path: temporary.path) } catch {
        try? FileManager.default.removeItem(at: temporary)
        throw .badModel("\(path): the written file does not read back: \(error.message)")
      }
      do { try readBack(written) } catch {
        try? FileManager.default.removeItem(at: temporary)
        throw error
      }
    }
    do { try replaceItem(at: final.path, with: temporary.path) } catch {
      try? FileManager.default.removeItem(at: temporary)
      throw .badModel("\(path): cannot move the written file into place: \(error.localizedDescription)")
    }
    return summary
  }
  if weights.encoding != .fp32 {
    throw .usage("\(path): --weights \(weights.encoding.rawValue) applies to .tmf output only (ONNX output keeps float32 weights)")
  }
  let staged: [StagedFile]
  do {
    staged = try writeONNX(
      model, temporary: temporary.path, final: final.path, externalData: externalData, allowContribOps: allowContribOps)
  } catch {
    try? FileManager.default.removeItem(at: temporary)
    let message = (error as? CLIError)?.message ?? "\(error)"
    throw .badModel("\(path): \(message)")
  }
  do {
    for file in staged {  // the model last, once its data is in place
      try replaceItem(at: file.final, with: file.temporary) }
  } catch {
    for file in staged { try? FileManager.default.removeItem(atPath: file.temporary) }
    throw .badModel("\(path): cannot move the written file into place: \(error.localizedDescription)")
  }
  return nil
}

/// A file written under a temporary name, to be renamed to its final name.
struct StagedFile {
  let temporary: String
  let final: String
}

/// Atomically renames `temporary` to `final` (rename(2) replaces an existing file).
private func replaceItem(at final: String, with temporary: String) throws {
  guard rename(temporary, final) == 0 else {
    throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: String(cString: strerror(errno))])
  }
}
