// ONNX ModelProto → rebirth's IR.
//
// The file is unpacked by protobuf-c (ONNXFile.swift); this converts the unpacked message into a
// `Model`. Weights are not copied: large initializers view the mapped file (RawDataViews.swift),
// and each other `raw_data` buffer protobuf-c allocated is adopted by a `TensorStorage` and
// detached from the message, so freeing the message leaves it alone.
//
// Everything read from the message is treated as hostile: counts and pointers are checked (a
// count with a NULL array reads as empty, a NULL string as ""), arithmetic on sizes is checked,
// and every problem is an `ImportError` naming the file and what is wrong.

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

/// Reads ONNX models into rebirth's IR.
///
///     let model = try ONNXImporter.load(path: "resnet50.onnx")
///     try model.graph.verify()
///
/// What is kept: IR version, opset imports, producer, domain, model version, doc strings and
/// metadata (model, graph, node, value info), inputs, outputs and value info with their types
/// (static, symbolic and unknown dims; a negative `dim_value` reads as unknown), initializers of
/// every fixed-width dtype and strings (raw or typed fields, inline or external), initializers that
/// are also inputs (as inputs with a default), `Constant` nodes as they are, attributes of every
/// type, subgraphs (outer names become captures), custom domains, model-local functions, and
/// training info, device configurations and quantization annotations as opaque bytes.
///
/// What changes: a `sparse_initializer` becomes a dense initializer of the same name; nodes are
/// put in topological order when the file's order is not one (file order is kept when it is).
///
/// Not kept (the IR has no place for them): denotations on types and dims, the `name` of a
/// tensor held in an attribute (a `Constant`'s value), `metadata_props` of tensors, and node
/// `device_configurations`. Refused: segmented tensors, and tensor data of element types newer
/// than `DType` knows (float8e8m0, int2/uint2, float6); values of those types are still typed.
public enum ONNXImporter {
  /// Reads the model at `path`; external data is read relative to the model's folder.
  public static func load(path: String) throws(ImportError) -> Model {
    let proto = try ONNXModelProto.load(path: path)
    defer { withExtendedLifetime(proto) {} }
    let reader = ModelReader(path: path)
    reader.mappedFile = proto.file
    return try reader.model(proto.pointer)
  }

  /// Reads a serialized model held in memory. `path` labels errors and locates external data
  /// (relative to its folder); the file itself is not read.
  public static func load(bytes: UnsafeRawBufferPointer, path: String) throws(ImportError) -> Model {
    let proto = try ONNXModelProto.unpack(bytes, path: path)
    defer { withExtendedLifetime(proto) {} }
    return try ModelReader(path: path).model(proto.pointer)
  }

  /// Reads a serialized model held in memory (see `load(bytes:path:)`).
  public static func load(bytes: [UInt8], path: String) throws(ImportError) -> Model {
    var result: Result<Model, ImportError> = .failure(ImportError(path: path, message: "empty file"))
    bytes.withUnsafeBytes { raw in
      result = Result { () throws(ImportError) -> Model in try load(bytes: raw, path: path) }
    }
    return try result.get()
  }
}

/// The state of one import: the file's path (for errors and external data) and the external data
/// files opened so far.
final class ModelReader {
  let path: String
  /// External data files by resolved path.
  var externalFiles: [String: ExternalFile] = [:]
  /// The model's folder with symlinks resolved; computed on first use.
  var resolvedFolder: String?
  /// The mapped model file whose bytes large initializers may view instead of copies.
  var mappedFile: MappedModelFile?

  init(path: String) { self.path = path }

  deinit {
    for file in externalFiles.values { _ = close(file.descriptor) }
  }

  func fail(_ message: String) -> ImportError { ImportError(path: path, message: message) }

  // MARK: Model

  func model(_ m: UnsafeMutablePointer<Onnx__ModelProto>) throws(ImportError) -> Model {
    guard let g = m.pointee.graph else { throw fail("the model has no graph") }
    var model = Model(graph: try graph(g, scope: .main))
    let p = m.pointee
    if p.has_ir_version != 0 { model.irVersion = p.ir_version }
    model.opsetImports = opsetImports(p.opset_import, p.n_opset_import)
    model.producerName = text(p.producer_name)
    model.producerVersion = text(p.producer_version)
    model.domain = text(p.domain)
    if p.has_model_version != 0 { model.modelVersion = p.model_version }
    model.docString = text(p.doc_string)
    model.metadataProps = metadata(p.metadata_props, p.n_metadata_props)
    for f in messages(p.functions, p.n_functions) { model.functions.append(try function(f)) }
    model.opaqueTrainingInfo = messages(p.training_info, p.n_training_info).map { opaque($0) }
    model.opaqueConfiguration = messages(p.configuration, p.n_configuration).map { opaque($0) }
    return model.adoptingContribFusedLayers()  // com.microsoft.FusedConv/FusedGemm: rebirth's fused layers
  }

  func opsetImports(
    _ base: UnsafeMutablePointer<UnsafeMutablePointer<Onnx__OperatorSetIdProto>?>?, _ count: Int
  ) -> [OpsetImport] {
    messages(base, count).map { o in
      OpsetImport(domain: text(o.pointee.domain), version: o.pointee.has_version != 0 ? o.pointee.version : 0)
    }
  }

  // MARK: Functions

  /// A model-local function: its body is a graph whose inputs and outputs are the formal
  /// parameters, untyped unless the function's `value_info` types them.
  func function(_ f: UnsafeMutablePointer<Onnx__FunctionProto>) throws(ImportError) -> Function {
    let p = f.pointee
    let name = text(p.name)
    do throws(ImportError) {
      var body = Graph(name: name)
      for input in strings(p.input, p.n_input) {
        guard !input.isEmpty else { throw fail("an input has an empty name") }
        try add { () throws(GraphError) in try body.addInput(name: input, type: nil) }
      }
      try addNodes(messages(p.node, p.n_node), to: &body, scope: .function)
      for output in strings(p.output, p.n_output) {
        guard let id = body.value(named: output) else {
          throw fail("output '\(output)' is not produced by any node or input")
        }
        body.addOutput(id)
      }
      applyValueInfo(messages(p.value_info, p.n_value_info), to: &body)
      var function = Function(name: name, domain: text(p.domain), body: body)
      function.overload = text(p.overload)
      function.attributeNames = strings(p.attribute, p.n_attribute)
      for a in messages(p.attribute_proto, p.n_attribute_proto) {
        function.attributeDefaults.append(try attribute(a, owner: "function '\(name)'"))
      }
      function.opsetImports = opsetImports(p.opset_import, p.n_opset_import)
      function.docString = text(p.doc_string)
      function.metadataProps = metadata(p.metadata_props, p.n_metadata_props)
      return function
    } catch {
      throw fail("in function '\(name)': \(error.message)")
    }
  }

  // MARK: Small conversions

  /// Runs an IR mutation, turning its error into an import error.
  @discardableResult
  func add<T>(_ body: () throws(GraphError) -> T) throws(ImportError) -> T {
    do { return try body() } catch {
      switch error {
      case .duplicateName(let name): throw fail("value '\(name)' is defined more than once")
      case .unknownValue(let name): throw fail("value '\(name)' is read but not produced")
      }
    }
  }

  func metadata(
    _ base: UnsafeMutablePointer<UnsafeMutablePointer<Onnx__StringStringEntryProto>?>?, _ count: Int
  ) -> [MetadataEntry] {
    messages(base, count).map { MetadataEntry(key: text($0.pointee.key), value: text($0.pointee.value)) }
  }

  /// The encoded bytes of a message rebirth carries without interpreting.
  func opaque<T>(_ message: UnsafeMutablePointer<T>) -> OpaqueProto {
    let base = UnsafeRawPointer(message).assumingMemoryBound(to: ProtobufCMessage.self)
    let size = protobuf_c_message_get_packed_size(base)
    var bytes = [UInt8](repeating: 0, count: size)
    let written = bytes.withUnsafeMutableBufferPointer { buffer in
      buffer.baseAddress.map { protobuf_c_message_pack(base, $0) } ?? 0
    }
    return OpaqueProto(bytes: Array(bytes.prefix(written)))
  }
}

// MARK: - Reading protobuf-c's arrays and strings safely

/// A C string as a Swift string; NULL reads as "".
func text(_ pointer: UnsafePointer<CChar>?) -> String {
  guard let pointer else { return "" }
  return String(cString: pointer)
}

/// The elements of a repeated message field, skipping NULL entries; a NULL array reads as empty.
func messages<T>(_ base: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?, _ count: Int) -> [UnsafeMutablePointer<T>] {
  guard let base, count > 0 else { return [] }
  return UnsafeMutableBufferPointer(start: base, count: count).compactMap { $0 }
}

/// The elements of a repeated string field; NULL entries read as "".
func strings(_ base: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ count: Int) -> [String] {
  guard let base, count > 0 else { return [] }
  return UnsafeMutableBufferPointer(start: base, count: count).map { text($0) }
}

/// A repeated scalar field as a buffer; a NULL array reads as empty.
func scalars<T>(_ base: UnsafeMutablePointer<T>?, _ count: Int) -> UnsafeMutableBufferPointer<T> {
  guard let base, count > 0 else { return UnsafeMutableBufferPointer(start: nil, count: 0) }
  return UnsafeMutableBufferPointer(start: base, count: count)
}

/// The bytes of a `bytes` field; a NULL pointer reads as empty.
func byteArray(_ data: ProtobufCBinaryData) -> [UInt8] {
  guard let base = data.data, data.len > 0 else { return [] }
  return Array(UnsafeBufferPointer(start: base, count: data.len))
}
