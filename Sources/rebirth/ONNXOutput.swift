import Exporters
import Foundation
import Graph

/// Writes ONNX to `temporary`, with any external data staged beside it under a temporary name and
/// named after `final`; returns the files to rename into place, the model last.
func writeONNX(
  _ model: Model, temporary: String, final: String, externalData: Bool, allowContribOps: Bool = false
) throws -> [StagedFile] {
  let dataStaging = temporary + ".data"
  let options = ONNXExportOptions(
    externalData: externalData, finalPath: final, externalDataStagingPath: dataStaging, allowContribOps: allowContribOps)
  do {
    let summary = try ONNXExporter.write(model, to: temporary, options: options)
    var staged: [StagedFile] = []
    if let written = summary.externalDataWrittenPath, let destination = summary.externalDataPath {
      staged.append(StagedFile(temporary: written, final: destination))
    }
    staged.append(StagedFile(temporary: temporary, final: final))
    return staged
  } catch {
    try? FileManager.default.removeItem(atPath: dataStaging)
    throw CLIError.badModel(error.message)
  }
}
