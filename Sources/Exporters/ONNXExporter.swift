// rebirth's IR → an ONNX file, through protobuf-c, streamed to the file.

import CProtobufC
import Graph
import ONNXProto

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// How `ONNXExporter` writes a model.
public struct ONNXExportOptions: Sendable {
  /// Put tensors of `externalDataThreshold` bytes or more in an external data file. Done anyway
  /// when the model would exceed `protobufLimit` otherwise.
  public var externalData: Bool
  /// The path the model will finally have, when it is written to a temporary file first: the
  /// external data file is named after it (`<final name>.data`, in the final path's folder).
  /// Nil: the path written to is the final one.
  public var finalPath: String?
  /// Where to write the external data file, when the caller renames it into place itself (to
  /// `ONNXExportSummary.externalDataPath`, after the model). Nil: the exporter writes it to a
  /// temporary name beside its final path and renames it once the model is written.
  public var externalDataStagingPath: String?
  /// Tensors smaller than this many bytes stay inline.
  public var externalDataThreshold: Int
  /// Offsets of tensors in the external data file are multiples of this.
  public var externalDataAlignment: Int
  /// The largest serialized model protobuf allows (2 GiB - 1); lower it to test the fallback.
  public var protobufLimit: Int
  /// Write fused layers as onnxruntime's `com.microsoft.FusedConv`/`FusedGemm` where they have
  /// that spelling (``ContribFusedLayers``); otherwise, and for the rest, as standard nodes.
  public var allowContribOps: Bool

  public init(
    externalData: Bool = false, finalPath: String? = nil, externalDataStagingPath: String? = nil,
    externalDataThreshold: Int = 1024, externalDataAlignment: Int = 64, protobufLimit: Int = Int(Int32.max),
    allowContribOps: Bool = false
  ) {
    self.allowContribOps = allowContribOps
    self.externalData = externalData
    self.finalPath = finalPath
    self.externalDataStagingPath = externalDataStagingPath
    self.externalDataThreshold = externalDataThreshold
    self.externalDataAlignment = externalDataAlignment
    self.protobufLimit = protobufLimit
  }
}

/// What `ONNXExporter.write` wrote.
public struct ONNXExportSummary: Sendable, Equatable {
  /// Bytes of the model file.
  public var modelBytes: Int
  /// Where the external data file belongs (beside the final path), when one was written.
  public var externalDataPath: String?
  /// Where it was written: `externalDataStagingPath` when one was given, else `externalDataPath`.
  public var externalDataWrittenPath: String?
  /// Bytes of the external data file (0 when none).
  public var externalDataBytes: Int
  /// Tensors stored in the external data file.
  public var externalTensorCount: Int
}

/// A model could not be written. `description` is "path: message".
public struct ONNXExportError: Error, CustomStringConvertible, Sendable, Equatable {
  public var path: String
  public var message: String

  public init(path: String, message: String) {
    self.path = path
    self.message = message
  }

  public var description: String { "\(path): \(message)" }
}

/// Writes rebirth's IR as ONNX.
///
///     try ONNXExporter.write(model, to: "out.onnx.tmp",
///                            options: ONNXExportOptions(externalData: true, finalPath: "out.onnx"))
///     // wrote out.onnx.tmp (the caller renames it to out.onnx) and out.onnx.data
///
/// The message tree points at the model's tensor bytes and is packed field by field straight
/// into the file, so no tensor is copied and no buffer holds the whole serialized model. Tensors
/// are written as `raw_data` (string tensors as `string_data`). Past protobuf's 2 GiB limit, or
/// when asked, tensors of 1 KiB or more go to `<final name>.data` beside the model, 64-byte
/// aligned, referenced by a relative location. Fused layers (`ai.rebirth`, from `fuse-activation`)
/// are written back as standard layer and activation nodes (``Model/unfusingActivations()``), or,
/// with `allowContribOps`, as onnxruntime's FusedConv/FusedGemm where those exist.
public enum ONNXExporter {
  /// Writes `model` to exactly `path` (the external data file, if any, beside the final path).
  @discardableResult
  public static func write(
    _ model: Model, to path: String, options: ONNXExportOptions = ONNXExportOptions()
  ) throws(ONNXExportError) -> ONNXExportSummary {
    // Standard ONNX has no fused layers; onnxruntime's contrib ops have some.
    let model = (options.allowContribOps ? model.contribFusingLayers() : model).unfusingActivations()
    let finalPath = options.finalPath ?? path
    let (builder, root, size) = try messages(for: model, path: path, finalPath: finalPath, options: options)
    var summary = ONNXExportSummary(
      modelBytes: size, externalDataPath: nil, externalDataWrittenPath: nil, externalDataBytes: 0,
      externalTensorCount: 0)
    var temporaryData: String?
    if let layout = builder.external, !layout.chunks.isEmpty {
      let dataPath = folder(of: finalPath) + "/" + layout.location
      let temporary = options.externalDataStagingPath ?? dataPath + ".tmp-\(getpid())"
      try writeExternalData(layout, to: temporary)
      (temporaryData, summary.externalDataPath) = (temporary, dataPath)
      summary.externalDataWrittenPath = options.externalDataStagingPath ?? dataPath
      (summary.externalDataBytes, summary.externalTensorCount) = (layout.size, layout.chunks.count)
    }
    do {
      try writeMessage(root, size: size, to: path)
    } catch {
      if let temporaryData { _ = unlink(temporaryData) }
      throw error
    }
    if options.externalDataStagingPath == nil, let temporaryData, let dataPath = summary.externalDataPath,
      rename(temporaryData, dataPath) != 0
    {
      let code = errno
      _ = unlink(temporaryData)
      throw ONNXExportError(path: dataPath, message: "cannot write external data: \(errorText(code))")
    }
    withExtendedLifetime(model) {}
    withExtendedLifetime(builder) {}
    return summary
  }

  /// The message tree of `model`, with weights in external data when asked or when the model
  /// would otherwise pass the protobuf limit; and its serialized size.
  private static func messages(
    for model: Model, path: String, finalPath: String, options: ONNXExportOptions
  ) throws(ONNXExportError) -> (MessageBuilder, UnsafeMutablePointer<Onnx__ModelProto>, Int) {
    let layout = ExternalLayout(
      location: lastComponent(finalPath) + ".data", threshold: options.externalDataThreshold,
      alignment: options.externalDataAlignment)
    var builder = MessageBuilder(path: path, external: options.externalData ? layout : nil)
    var root = try builder.model(model)
    var size = protobuf_c_message_get_packed_size(baseMessage(root))
    if size > options.protobufLimit, builder.external == nil {
      builder = MessageBuilder(path: path, external: layout)
      root = try builder.model(model)
      size = protobuf_c_message_get_packed_size(baseMessage(root))
    }
    guard size <= options.protobufLimit else {
      throw ONNXExportError(
        path: path,
        message: "the model takes \(size) bytes even with its weights in external data, past protobuf's limit")
    }
    return (builder, root, size)
  }

  /// The serialized model, all tensors inline, in memory (for tests and small models).
  public static func serialize(_ model: Model) throws(ONNXExportError) -> [UInt8] {
    let model = model.unfusingActivations()  // ONNX has no fused layers
    let builder = MessageBuilder(path: "<memory>", external: nil)
    let root = try builder.model(model)
    let message = baseMessage(root)
    let size = protobuf_c_message_get_packed_size(message)
    guard size <= Int(Int32.max) else {
      throw ONNXExportError(path: "<memory>", message: "the model takes \(size) bytes, past protobuf's limit")
    }
    var bytes = [UInt8](repeating: 0, count: size)
    let written = bytes.withUnsafeMutableBufferPointer { b in
      b.baseAddress.map { protobuf_c_message_pack(message, $0) } ?? 0
    }
    withExtendedLifetime(model) {}
    withExtendedLifetime(builder) {}
    return Array(bytes.prefix(written))
  }

  // MARK: Files

  private static func writeMessage(
    _ root: UnsafeMutablePointer<Onnx__ModelProto>, size: Int, to path: String
  ) throws(ONNXExportError) {
    let written = try withFile(path) { sink in sink.pack(baseMessage(root)) }
    guard written == size else {
      throw ONNXExportError(path: path, message: "protobuf-c packed \(written) bytes where it measured \(size)")
    }
  }

  private static func writeExternalData(_ layout: ExternalLayout, to path: String) throws(ONNXExportError) {
    _ = try withFile(path) { sink in
      var position = 0
      for (storage, offset) in layout.chunks {
        sink.appendZeros(offset - position)
        sink.append(storage.storedBytes.baseAddress, storage.storedBytes.count)
        position = offset + storage.count
      }
    }
  }

  /// Creates (or truncates) `path`, lets `fill` write it through a sink, and closes it; a regular
  /// file is removed when writing fails (a device or pipe is left alone). Returns the bytes written.
  private static func withFile(_ path: String, _ fill: (FileSink) -> Void) throws(ONNXExportError) -> Int {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw ONNXExportError(path: path, message: "cannot create: \(errorText(errno))") }
    var info = stat()
    let isRegular = fstat(fd, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
    let sink = FileSink(descriptor: fd)
    fill(sink)
    sink.flush()
    var code = sink.errorCode
    if close(fd) != 0, code == 0 { code = errno }
    guard code == 0 else {
      if isRegular { _ = unlink(path) }
      throw ONNXExportError(path: path, message: "cannot write: \(errorText(code))")
    }
    return sink.bytesWritten
  }

  private static func lastComponent(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: slash)...])
  }

  private static func folder(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "" : String(path[..<slash])
  }
}

private func errorText(_ code: Int32) -> String {
  guard let text = strerror(code) else { return "error \(code)" }
  return String(cString: text)
}
