import CProtobufC
import Exporters
import Foundation
import Graph
import ONNXProto
import Testing

@testable import Importers

// MARK: - Comparing models field by field

/// The differences between two models, each a line naming where it is.
struct ModelComparison {
  private(set) var differences: [String] = []

  init(_ a: Model, _ b: Model) { compare(a, b) }

  private mutating func expect(_ same: Bool, _ what: @autoclosure () -> String) {
    if !same { differences.append(what()) }
  }

  private mutating func compare(_ a: Model, _ b: Model) {
    expect(a.irVersion == b.irVersion, "ir_version \(a.irVersion) vs \(b.irVersion)")
    expect(a.opsetImports == b.opsetImports, "opset imports \(a.opsetImports) vs \(b.opsetImports)")
    expect(a.producerName == b.producerName && a.producerVersion == b.producerVersion, "producer")
    expect(a.domain == b.domain && a.modelVersion == b.modelVersion, "domain or model version")
    expect(a.docString == b.docString, "model doc string")
    expect(a.metadataProps == b.metadataProps, "model metadata")
    expect(a.opaqueTrainingInfo == b.opaqueTrainingInfo, "training info")
    expect(a.opaqueConfiguration == b.opaqueConfiguration, "configuration")
    compare(a.graph, b.graph, at: "graph")
    expect(a.functions.count == b.functions.count, "function count \(a.functions.count) vs \(b.functions.count)")
    for (f, g) in zip(a.functions, b.functions) {
      let at = "function \(f.domain).\(f.name)"
      expect(f.name == g.name && f.domain == g.domain && f.overload == g.overload, "\(at): name, domain or overload")
      expect(f.attributeNames == g.attributeNames, "\(at): attribute names")
      expect(f.opsetImports == g.opsetImports, "\(at): opset imports")
      expect(f.docString == g.docString && f.metadataProps == g.metadataProps, "\(at): doc string or metadata")
      compare(f.attributeDefaults, g.attributeDefaults, at: "\(at) defaults")
      compare(f.body, g.body, at: at)
    }
  }

  private mutating func compare(_ a: Graph, _ b: Graph, at: String) {
    expect(a.name == b.name, "\(at): name '\(a.name)' vs '\(b.name)'")
    expect(a.docString == b.docString && a.metadataProps == b.metadataProps, "\(at): doc string or metadata")
    expect(a.opaqueQuantizationAnnotations == b.opaqueQuantizationAnnotations, "\(at): quantization annotations")
    expect(a.inputs.map { a[$0].name } == b.inputs.map { b[$0].name }, "\(at): inputs")
    expect(a.outputs.map { a[$0].name } == b.outputs.map { b[$0].name }, "\(at): outputs")
    let names = Set(a.valueIDs.map { a[$0].name })
    expect(names == Set(b.valueIDs.map { b[$0].name }), "\(at): value names differ")
    for name in names.sorted() {
      guard let va = a.value(named: name).map({ a[$0] }), let vb = b.value(named: name).map({ b[$0] }) else { continue }
      compare(va, vb, at: "\(at): value '\(name)'")
    }
    let nodesA = (a.topologicalOrder() ?? []).map { a[$0] }
    let nodesB = (b.topologicalOrder() ?? []).map { b[$0] }
    expect(nodesA.count == nodesB.count, "\(at): node count \(nodesA.count) vs \(nodesB.count)")
    for (na, nb) in zip(nodesA, nodesB) { compare(na, in: a, nb, in: b, at: "\(at): node '\(na.name)'") }
  }

  private mutating func compare(_ a: Value, _ b: Value, at: String) {
    expect(a.type == b.type, "\(at): type \(String(describing: a.type)) vs \(String(describing: b.type))")
    expect(a.docString == b.docString && a.metadataProps == b.metadataProps, "\(at): doc string or metadata")
    switch (a.definition, b.definition) {
    case (.input(let da), .input(let db)):
      expect((da == nil) == (db == nil), "\(at): default present in one only")
      if let da, let db { compare(da, db, at: at) }
    case (.initializer(let ta), .initializer(let tb)): compare(ta, tb, at: at)
    case (.node, .node), (.outerScope, .outerScope): break
    default: expect(false, "\(at): defined as \(a.definition) vs \(b.definition)")
    }
  }

  private mutating func compare(_ a: Node, in ga: Graph, _ b: Node, in gb: Graph, at: String) {
    expect(a.name == b.name && a.opType == b.opType && a.domain == b.domain, "\(at): name, op or domain")
    expect(a.overload == b.overload && a.docString == b.docString, "\(at): overload or doc string")
    expect(a.metadataProps == b.metadataProps, "\(at): metadata")
    expect(a.inputs.map { $0.map { ga[$0].name } } == b.inputs.map { $0.map { gb[$0].name } }, "\(at): inputs")
    expect(a.outputs.map { $0.map { ga[$0].name } } == b.outputs.map { $0.map { gb[$0].name } }, "\(at): outputs")
    expect(Set(a.captures.map { ga[$0].name }) == Set(b.captures.map { gb[$0].name }), "\(at): captures")
    compare(a.attributes, b.attributes, at: at)
  }

  private mutating func compare(_ a: [Attribute], _ b: [Attribute], at: String) {
    expect(a.map(\.name) == b.map(\.name), "\(at): attribute names \(a.map(\.name)) vs \(b.map(\.name))")
    for (x, y) in zip(a, b) {
      let here = "\(at): attribute '\(x.name)'"
      expect(x.refAttrName == y.refAttrName && x.docString == y.docString, "\(here): ref_attr_name or doc string")
      compare(x.value, y.value, at: here)
    }
  }

  private mutating func compare(_ a: Attribute.Value, _ b: Attribute.Value, at: String) {
    switch (a, b) {
    case (.float(let x), .float(let y)): expect(x.bitPattern == y.bitPattern, "\(at): \(x) vs \(y)")
    case (.int(let x), .int(let y)): expect(x == y, "\(at): \(x) vs \(y)")
    case (.string(let x), .string(let y)): expect(x == y, "\(at): strings differ")
    case (.tensor(let x), .tensor(let y)): compare(x, y, at: at)
    case (.graph(let x), .graph(let y)): compare(x, y, at: "\(at) graph")
    case (.sparseTensor(let x), .sparseTensor(let y)): expect(x == y, "\(at): sparse tensor bytes")
    case (.type(let x), .type(let y)): expect(x == y, "\(at): \(x) vs \(y)")
    case (.floats(let x), .floats(let y)): expect(x.map(\.bitPattern) == y.map(\.bitPattern), "\(at): floats")
    case (.ints(let x), .ints(let y)): expect(x == y, "\(at): ints")
    case (.strings(let x), .strings(let y)): expect(x == y, "\(at): strings")
    case (.tensors(let x), .tensors(let y)):
      expect(x.count == y.count, "\(at): tensor count")
      for (i, (p, q)) in zip(x, y).enumerated() { compare(p, q, at: "\(at)[\(i)]") }
    case (.graphs(let x), .graphs(let y)):
      expect(x.count == y.count, "\(at): graph count")
      for (i, (p, q)) in zip(x, y).enumerated() { compare(p, q, at: "\(at)[\(i)]") }
    case (.sparseTensors(let x), .sparseTensors(let y)): expect(x == y, "\(at): sparse tensors")
    case (.types(let x), .types(let y)): expect(x == y, "\(at): types")
    case (.reference(let x), .reference(let y)): expect(x == y, "\(at): reference type \(x) vs \(y)")
    default: expect(false, "\(at): \(a) vs \(b)")
    }
  }

  private mutating func compare(_ a: Tensor, _ b: Tensor, at: String) {
    expect(a.hasSameContent(as: b), "\(at): tensor \(a.dtype)\(a.shape) vs \(b.dtype)\(b.shape) or bytes differ")
    expect(a.docString == b.docString, "\(at): tensor doc string")
  }
}

// MARK: - Helpers

let fixturesFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
  .appendingPathComponent("../../fixtures").standardized.path

/// Writes `model` to a new folder (as `model.onnx`), reads it back, and checks the copy.
func roundTrip(_ model: Model, options: ONNXExportOptions = ONNXExportOptions()) throws -> (Model, ONNXExportSummary) {
  let folder = try temporaryFolder("roundtrip")
  defer { try? FileManager.default.removeItem(atPath: folder) }
  let path = folder + "/model.onnx"
  let summary = try ONNXExporter.write(model, to: path, options: options)
  let again = try ONNXImporter.load(path: path)
  try again.graph.verify()
  return (again, summary)
}

/// The differences between `a` and `b`, for `#expect` messages.
func differences(_ a: Model, _ b: Model) -> [String] { ModelComparison(a, b).differences }

/// The encoded bytes of a protobuf-c message built by `ProtoBuilder`.
func encoded<T>(_ message: UnsafeMutablePointer<T>) -> [UInt8] {
  let base = UnsafeRawPointer(message).assumingMemoryBound(to: ProtobufCMessage.self)
  var out = [UInt8](repeating: 0, count: protobuf_c_message_get_packed_size(base))
  let n = out.withUnsafeMutableBufferPointer { protobuf_c_message_pack(base, $0.baseAddress!) }
  return Array(out.prefix(n))
}

// MARK: - Fixtures

@Suite struct FixtureRoundTrips {
  static let fixtures = [
    "constant_weights", "external_data", "googlenet_stem", "if_subgraph", "inception_block", "lstm", "mlp",
    "mobilenetv2_block", "resnet_bottleneck", "symbolic_batch", "transformer_encoder", "typed_fields",
  ]

  @Test(arguments: fixtures, [false, true])
  func roundTrip(fixture: String, externalData: Bool) throws {
    let path = fixturesFolder + "/\(fixture).onnx"
    try #require(FileManager.default.fileExists(atPath: path), "fixture \(path) missing")
    let model = try ONNXImporter.load(path: path)
    try model.graph.verify()
    let (again, _) = try ImportersTests.roundTrip(model, options: ONNXExportOptions(externalData: externalData))
    let diffs = differences(model, again)
    #expect(diffs.isEmpty, "\(diffs)")
  }

  /// A file already in the form rebirth writes (raw_data, no typed fields) is reproduced byte for byte.
  @Test(arguments: ["googlenet_stem", "if_subgraph", "lstm", "mlp", "symbolic_batch", "transformer_encoder"])
  func bytesAreReproduced(fixture: String) throws {
    let path = fixturesFolder + "/\(fixture).onnx"
    let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    let model = try ONNXImporter.load(path: path)
    #expect(try ONNXExporter.serialize(model) == original)
  }

  @Test func keepsWhatTheFixturesDeclare() throws {
    let typed = try ONNXImporter.load(path: fixturesFolder + "/typed_fields.onnx")
    let bias = try #require(typed.graph.value(named: "bias"))
    guard case .input(let defaultValue?) = typed.graph[bias].definition else {
      Issue.record("'bias' should be an input with a default")
      return
    }
    #expect(defaultValue.dtype == .float && defaultValue.shape == [4])
    let symbolic = try ONNXImporter.load(path: fixturesFolder + "/symbolic_batch.onnx")
    let dims = symbolic.graph.outputs.compactMap { symbolic.graph[$0].type?.tensorShape?.first }
    #expect(!dims.isEmpty && dims.allSatisfy { $0 == .param("N") })
    let constants = try ONNXImporter.load(path: fixturesFolder + "/constant_weights.onnx")
    #expect(constants.graph.initializers.isEmpty)
    #expect(constants.graph.nodeIDs.contains { constants.graph[$0].opType == "Constant" })
  }
}

// MARK: - A model with every feature

enum EverythingModel {
  static func sparseTensorBytes() -> [UInt8] {
    let p = ProtoBuilder()
    let values = p.tensor("sv", .float, [2]) { t in
      (t.pointee.has_raw_data, t.pointee.raw_data) = (1, p.bytes(bytes(of: [1, 2] as [Float])))
    }
    let indices = p.tensor("si", .int64, [2]) { t in
      (t.pointee.has_raw_data, t.pointee.raw_data) = (1, p.bytes(bytes(of: [0, 3] as [Int64])))
    }
    let sparse = p.new(onnx__sparse_tensor_proto__init) { (s: UnsafeMutablePointer<Onnx__SparseTensorProto>) in
      (s.pointee.values, s.pointee.indices, s.pointee.n_dims, s.pointee.dims) = (
        values, indices, 1, p.array([5] as [Int64])
      )
    }
    return encoded(sparse)
  }

  static func opaqueMessages() -> (training: [UInt8], configuration: [UInt8], annotation: [UInt8]) {
    let p = ProtoBuilder()
    let binding = p.new(onnx__string_string_entry_proto__init) {
      (e: UnsafeMutablePointer<Onnx__StringStringEntryProto>) in
      (e.pointee.key, e.pointee.value) = (p.string("w"), p.string("w_init"))
    }
    let training = p.new(onnx__training_info_proto__init) { (t: UnsafeMutablePointer<Onnx__TrainingInfoProto>) in
      (t.pointee.n_initialization_binding, t.pointee.initialization_binding) = (1, p.pointers([binding]))
    }
    let configuration = p.new(onnx__device_configuration_proto__init) {
      (c: UnsafeMutablePointer<Onnx__DeviceConfigurationProto>) in
      (c.pointee.name, c.pointee.has_num_devices, c.pointee.num_devices) = (p.string("pair"), 1, 2)
    }
    let annotation = p.new(onnx__tensor_annotation__init) { (a: UnsafeMutablePointer<Onnx__TensorAnnotation>) in
      a.pointee.tensor_name = p.string("sum")
      (a.pointee.n_quant_parameter_tensor_names, a.pointee.quant_parameter_tensor_names) = (1, p.pointers([binding]))
    }
    return (encoded(training), encoded(configuration), encoded(annotation))
  }

  /// then: x + w (both read from the main graph); else: x.
  static func branches() throws -> (Graph, Graph) {
    var then = Graph(name: "then")
    let x = try then.addOuterReference(name: "x")
    let w = try then.addOuterReference(name: "w")
    let add = try then.addNode(opType: "Add", name: "inner_add", inputs: [x, w], outputs: ["t"])
    then.addOutput(then[add].outputs[0]!)
    var otherwise = Graph(name: "else")
    let xe = try otherwise.addOuterReference(name: "x")
    let identity = try otherwise.addNode(opType: "Identity", inputs: [xe], outputs: ["e"])
    otherwise.addOutput(otherwise[identity].outputs[0]!)
    otherwise.docString = "the else branch"
    return (then, otherwise)
  }

  static func everyAttribute(_ subgraph: Graph) -> [Attribute] {
    let small = Tensor(floats: [0.5, -1], shape: [2])
    let half = Tensor(dtype: .float16, shape: [2], storage: .copying([Float16(1), Float16(-2)]))!
    return [
      Attribute("f", .float(-0.0)), Attribute("i", .int(.min)), Attribute("s", .string([0, 0xFF, 0x41])),
      Attribute("t", .tensor(small), docString: "a tensor attribute"), Attribute("g", .graph(subgraph)),
      Attribute("st", .sparseTensor(OpaqueProto(bytes: sparseTensorBytes()))),
      Attribute("tp", .type(.sequence(.map(key: .int64, value: .tensor(.float, shape: nil))))),
      Attribute("fs", .floats([1, .nan, .infinity])), Attribute("is", .ints([])),
      Attribute("ss", .strings([[], [1, 2]])),
      Attribute("ts", .tensors([small, half])), Attribute("gs", .graphs([subgraph, subgraph])),
      Attribute("sts", .sparseTensors([OpaqueProto(bytes: sparseTensorBytes())])),
      Attribute(
        "tps",
        .types([
          .optional(.tensor(.bool, shape: [])), .opaque(domain: "d", name: "n"),
          .sparseTensor(.float, shape: [.unknown]),
        ])),
    ]
  }

  /// Scale(X) = X * alpha, alpha an attribute of the call.
  static func scaleFunction() throws -> Function {
    var body = Graph(name: "Scale")
    let x = try body.addInput(name: "X", type: nil)
    let c = try body.addNode(
      opType: "Constant", name: "alpha_constant", inputs: [], outputs: ["alpha_value"],
      attributes: [Attribute("value_float", .reference(type: 1), refAttrName: "alpha")])
    let mul = try body.addNode(opType: "Mul", inputs: [x, body[c].outputs[0]], outputs: ["Y"])
    body.addOutput(body[mul].outputs[0]!)
    var f = Function(name: "Scale", domain: "com.local", body: body)
    f.attributeNames = ["alpha"]
    f.attributeDefaults = [Attribute("beta", .float(2))]
    f.opsetImports = [OpsetImport(domain: "", version: 17)]
    f.docString = "multiplies by alpha"
    f.metadataProps = [MetadataEntry(key: "k", value: "v")]
    f.overload = "v1"
    return f
  }

  static func make() throws -> Model {
    var g = Graph(name: "main")
    g.docString = "everything"
    g.metadataProps = [MetadataEntry(key: "graph", value: "yes")]
    let x = try g.addInput(name: "x", type: .tensor(.float, shape: [.param("N"), .value(4), .unknown]))
    let bias = try g.addInput(
      name: "bias", type: .tensor(.float, shape: [.value(4)]), default: Tensor(floats: [1, 2, 3, 4], shape: [4]))
    let c = try g.addInput(name: "c", type: .tensor(.bool, shape: []))
    let seq = try g.addInput(name: "seq", type: .sequence(.tensor(.int64, shape: nil)))
    var w = Tensor(floats: [0.25, 0.5, 0.75, 1], shape: [4])
    w.docString = "weights"
    let wid = try g.addInitializer(name: "w", w)
    let words = try g.addInitializer(name: "words", Tensor(strings: [Array("a".utf8), []], shape: [2])!)
    let (then, otherwise) = try branches()
    let add = try g.addNode(opType: "Add", name: "add", inputs: [x, bias], outputs: ["sum"])
    g.updateNode(add) { n in
      n.docString = "adds"
      n.metadataProps = [MetadataEntry(key: "node", value: "1")]
    }
    let sum = g[add].outputs[0]!
    g.updateValue(sum) { v in
      v.type = .tensor(.float, shape: [.param("N"), .value(4), .unknown])
      v.docString = "the sum"
      v.metadataProps = [MetadataEntry(key: "value", value: "2")]
    }
    g.opaqueQuantizationAnnotations = [OpaqueProto(bytes: opaqueMessages().annotation)]
    let branch = try g.addNode(
      opType: "If", name: "if", inputs: [c], outputs: ["chosen"],
      attributes: [Attribute("then_branch", .graph(then)), Attribute("else_branch", .graph(otherwise))])
    let custom = try g.addNode(
      opType: "Everything", domain: "com.example", name: "custom", inputs: [sum, nil, wid, words, seq],
      outputs: ["o1", "", "o3"],
      attributes: everyAttribute(then))
    g.updateNode(custom) { $0.overload = "special" }
    let call = try g.addNode(
      opType: "Scale", domain: "com.local", name: "call", inputs: [g[branch].outputs[0]], outputs: ["scaled"],
      attributes: [Attribute("alpha", .float(3))])
    g.addOutput(g[call].outputs[0]!)
    g.addOutput(g[custom].outputs[0]!)
    g.addOutput(x)
    let opaque = opaqueMessages()
    var model = Model(graph: g)
    model.irVersion = 10
    model.opsetImports = [
      OpsetImport(domain: "", version: 17), OpsetImport(domain: "com.local", version: 1),
      OpsetImport(domain: "com.example", version: 1),
    ]
    (model.producerName, model.producerVersion, model.domain) = ("rebirth-tests", "1.0", "org.rebirth")
    (model.modelVersion, model.docString) = (3, "a model with every feature")
    model.metadataProps = [MetadataEntry(key: "author", value: "tests"), MetadataEntry(key: "", value: "")]
    model.functions = [try scaleFunction()]
    model.opaqueTrainingInfo = [OpaqueProto(bytes: opaque.training)]
    model.opaqueConfiguration = [OpaqueProto(bytes: opaque.configuration)]
    return model
  }
}

@Suite struct ModelRoundTrips {
  @Test func everyFeatureSurvivesAFile() throws {
    let model = try EverythingModel.make()
    try model.graph.verify()
    let (again, _) = try roundTrip(model)
    let diffs = differences(model, again)
    #expect(diffs.isEmpty, "\(diffs)")
    let node = try #require(again.graph.nodeIDs.map { again.graph[$0] }.first { $0.name == "custom" })
    #expect(node.inputs[1] == nil && node.outputs[1] == nil)
    #expect(Set(node.captures.map { again.graph[$0].name }) == ["x", "w"])
  }

  @Test func everyFeatureSurvivesMemory() throws {
    let model = try EverythingModel.make()
    let bytes = try ONNXExporter.serialize(model)
    let again = try ONNXImporter.load(bytes: bytes, path: "memory.onnx")
    try again.graph.verify()
    let diffs = differences(model, again)
    #expect(diffs.isEmpty, "\(diffs)")
    #expect(try ONNXExporter.serialize(again) == bytes)
  }

  /// The streamed file and the in-memory serialization agree byte for byte.
  @Test func streamedFileEqualsSerializedBytes() throws {
    let model = try EverythingModel.make()
    let folder = try temporaryFolder("stream")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try ONNXExporter.write(model, to: folder + "/m.onnx")
    let written = try [UInt8](Data(contentsOf: URL(fileURLWithPath: folder + "/m.onnx")))
    #expect(written == (try ONNXExporter.serialize(model)))
  }

  @Test func cycleIsRefused() throws {
    var g = Graph(name: "loop")
    let x = try g.addInput(name: "x", type: .tensor(.float, shape: [.value(1)]))
    let a = try g.addNode(opType: "Neg", inputs: [x], outputs: ["a"])
    let b = try g.addNode(opType: "Neg", inputs: [g[a].outputs[0]], outputs: ["b"])
    g.setInput(0, of: a, to: g[b].outputs[0])
    g.addOutput(g[b].outputs[0]!)
    #expect(throws: ONNXExportError.self) { try ONNXExporter.serialize(Model(graph: g)) }
  }
}

// MARK: - External data

@Suite struct ExternalDataExport {
  /// A model with a 4 KiB initializer, a 16-byte one, a 2 KiB Constant and a string tensor.
  static func model() throws -> Model {
    var g = Graph(name: "ext")
    let x = try g.addInput(name: "x", type: .tensor(.float, shape: [.value(1024)]))
    let big = try g.addInitializer(name: "big", Tensor(floats: (0..<1024).map { Float($0) }, shape: [1024]))
    let small = try g.addInitializer(name: "small", Tensor(floats: [1, 2, 3, 4], shape: [4]))
    _ = try g.addInitializer(name: "words", Tensor(strings: [Array(repeating: 65, count: 2000)], shape: [1])!)
    let constant = try g.addNode(
      opType: "Constant", name: "k", inputs: [], outputs: ["k"],
      attributes: [Attribute("value", .tensor(Tensor(int64s: (0..<256).map { Int64($0) }, shape: [256])))])
    let add = try g.addNode(opType: "Add", inputs: [x, big], outputs: ["y"])
    let mul = try g.addNode(opType: "Mul", inputs: [g[add].outputs[0], small], outputs: ["z"])
    g.addOutput(g[mul].outputs[0]!)
    g.addOutput(g[constant].outputs[0]!)
    var model = Model(graph: g)
    model.opsetImports = [OpsetImport(domain: "", version: 17)]
    return model
  }

  /// Each initializer or Constant tensor of the written file: name, raw_data length, and
  /// external (location, offset, length) when it has them.
  static func layout(of path: String) throws -> [(name: String, raw: Int, external: [String: String])] {
    let proto = try ONNXModelProto.load(path: path)
    defer { withExtendedLifetime(proto) {} }
    let graph = try #require(proto.pointer.pointee.graph)
    var tensors = messages(graph.pointee.initializer, graph.pointee.n_initializer).map { ($0, text($0.pointee.name)) }
    for node in messages(graph.pointee.node, graph.pointee.n_node) {
      for a in messages(node.pointee.attribute, node.pointee.n_attribute) {
        if let t = a.pointee.t { tensors.append((t, "attribute of \(text(node.pointee.name))")) }
      }
    }
    return tensors.map { t, name in
      var external: [String: String] = [:]
      for e in messages(t.pointee.external_data, t.pointee.n_external_data) {
        external[text(e.pointee.key)] = text(e.pointee.value)
      }
      return (name, t.pointee.raw_data.len, external)
    }
  }

  @Test func largeTensorsGoToAnAlignedFileNamedAfterTheFinalPath() throws {
    let model = try Self.model()
    let folder = try temporaryFolder("external-export")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let temporary = folder + "/.out.onnx.tmp"
    let summary = try ONNXExporter.write(
      model, to: temporary, options: ONNXExportOptions(externalData: true, finalPath: folder + "/out.onnx"))
    #expect(summary.externalDataPath == folder + "/out.onnx.data")
    #expect(summary.externalTensorCount == 2)
    #expect(FileManager.default.fileExists(atPath: folder + "/out.onnx.data"))
    let entries = try Self.layout(of: temporary)
    let external = entries.filter { !$0.external.isEmpty }
    #expect(Set(external.map(\.name)) == ["big", "attribute of k"])
    for e in external {
      #expect(e.external["location"] == "out.onnx.data")
      #expect(Int(e.external["offset"] ?? "x").map { $0 % 64 == 0 } == true, "\(e.external)")
    }
    #expect(entries.first { $0.name == "small" }?.raw == 16)
    try FileManager.default.moveItem(atPath: temporary, toPath: folder + "/out.onnx")
    let again = try ONNXImporter.load(path: folder + "/out.onnx")
    let diffs = differences(model, again)
    #expect(diffs.isEmpty, "\(diffs)")
  }

  @Test func pastTheProtobufLimitWeightsGoExternal() throws {
    let model = try Self.model()
    let (again, summary) = try roundTrip(model, options: ONNXExportOptions(protobufLimit: 4000))
    #expect(summary.externalTensorCount == 2 && summary.modelBytes <= 4000)
    let diffs = differences(model, again)
    #expect(diffs.isEmpty, "\(diffs)")
    let (_, inline) = try roundTrip(model)
    #expect(inline.externalDataPath == nil && inline.externalTensorCount == 0)
  }

  @Test func tooLargeEvenWithExternalData() throws {
    let model = try Self.model()
    let folder = try temporaryFolder("too-large")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    #expect(throws: ONNXExportError.self) {
      try ONNXExporter.write(model, to: folder + "/m.onnx", options: ONNXExportOptions(protobufLimit: 100))
    }
    #expect(!FileManager.default.fileExists(atPath: folder + "/m.onnx.data"))
  }

  /// A model read from external data and written back as external data into the same folder
  /// under the same name: the data was read into memory, so overwriting its file is safe.
  @Test func rewritingInPlace() throws {
    let folder = try temporaryFolder("in-place")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let model = try Self.model()
    let options = ONNXExportOptions(externalData: true)
    try ONNXExporter.write(model, to: folder + "/m.onnx", options: options)
    let first = try ONNXImporter.load(path: folder + "/m.onnx")
    try ONNXExporter.write(first, to: folder + "/m.onnx", options: options)
    let second = try ONNXImporter.load(path: folder + "/m.onnx")
    let diffs = differences(model, second)
    #expect(diffs.isEmpty, "\(diffs)")
  }
}

// MARK: - The comparison itself

@Suite struct ComparisonSeesDifferences {
  @Test func changedAttributeTensorAndName() throws {
    let model = try EverythingModel.make()
    #expect(differences(model, model).isEmpty)

    var renamed = model
    renamed.graph.name = "other"
    #expect(!differences(model, renamed).isEmpty)

    var changed = model
    let custom = try #require(changed.graph.nodeIDs.first { changed.graph[$0].name == "custom" })
    var attributes = changed.graph[custom].attributes
    attributes[1] = Attribute("i", .int(0))
    try changed.graph.setAttributes(of: custom, attributes)
    #expect(differences(model, changed).contains { $0.contains("attribute 'i'") })

    var reweighted = model
    let w = try #require(reweighted.graph.value(named: "w"))
    reweighted.graph.setConstant(w, Tensor(floats: [0, 0, 0, 0], shape: [4]))
    #expect(differences(model, reweighted).contains { $0.contains("value 'w'") })

    var untyped = model
    untyped.functions[0].body.updateValue(untyped.functions[0].body.inputs[0]) { $0.type = .tensor(.float, shape: nil) }
    #expect(differences(model, untyped).contains { $0.contains("function") })
  }
}

// MARK: - Write failures

@Suite struct WriteFailures {
  @Test func missingFolder() throws {
    let model = try ExternalDataExport.model()
    let error = #expect(throws: ONNXExportError.self) {
      try ONNXExporter.write(model, to: "/nonexistent-rebirth-folder/m.onnx")
    }
    #expect(error?.message.contains("cannot create") == true)
  }

  /// A full device: the error is reported and the device node is left alone.
  @Test(.enabled(if: FileManager.default.fileExists(atPath: "/dev/full")))
  func fullDevice() throws {
    let model = try ExternalDataExport.model()
    let error = #expect(throws: ONNXExportError.self) { try ONNXExporter.write(model, to: "/dev/full") }
    #expect(error?.message.contains("cannot write") == true)
    #expect(FileManager.default.fileExists(atPath: "/dev/full"))
  }
}

@Suite struct StagedExternalData {
  /// With a staging path, the data file is left there for the caller to rename after the model.
  @Test func callerRenamesTheDataFile() throws {
    let folder = try temporaryFolder("staged")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let options = ONNXExportOptions(
      externalData: true, finalPath: folder + "/final.onnx", externalDataStagingPath: folder + "/.data.tmp")
    let summary = try ONNXExporter.write(try ExternalDataExport.model(), to: folder + "/.model.tmp", options: options)
    #expect(summary.externalDataWrittenPath == folder + "/.data.tmp")
    #expect(summary.externalDataPath == folder + "/final.onnx.data")
    #expect(!FileManager.default.fileExists(atPath: folder + "/final.onnx.data"))
    try FileManager.default.moveItem(atPath: folder + "/.data.tmp", toPath: folder + "/final.onnx.data")
    try FileManager.default.moveItem(atPath: folder + "/.model.tmp", toPath: folder + "/final.onnx")
    let again = try ONNXImporter.load(path: folder + "/final.onnx")
    let diffs = differences(try ExternalDataExport.model(), again)
    #expect(diffs.isEmpty, "\(diffs)")
  }
}
