import Foundation
import GraphTesting
import Testing

@testable import Graph

// MARK: Helpers

/// Prints `model`, reads the text back, and checks that the graph verifies and prints the same.
@discardableResult
private func expectRoundTrip(_ model: Model, options: TextOptions = .init(), sourceLocation: SourceLocation = #_sourceLocation)
  throws -> (text: String, parsed: Model)
{
  let text = model.text(options: options)
  let parsed: Model
  do { parsed = try Model(parsing: text) } catch {
    Issue.record("does not parse: \(error)\n\(text)", sourceLocation: sourceLocation)
    throw error
  }
  try parsed.graph.verify()
  #expect(parsed.text(options: options) == text, sourceLocation: sourceLocation)
  return (text, parsed)
}

private func model(_ graph: Graph, opsets: [OpsetImport] = [OpsetImport(domain: "", version: 17)]) -> Model {
  var m = Model(graph: graph)
  m.opsetImports = opsets
  return m
}

private func tensor(_ dtype: DType, _ shape: [Int], bytes: [UInt8]) -> Tensor {
  Tensor(dtype: dtype, shape: shape, storage: .copying(bytes))!
}

private func bytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

private func floatType(_ dims: Dim...) -> ValueType { .tensor(.float, shape: dims) }

/// x → Conv(w, b) → BatchNormalization(γ, β, μ, σ²) → Relu → y, with a hashed conv weight.
private func convBatchNormRelu() throws -> Graph {
  var g = Graph(name: "conv_bn_relu")
  let x = try g.addInput(name: "x", type: floatType(.param("N"), .value(3), .value(8), .value(8)))
  let w = try g.addInitializer(name: "w", Tensor(floats: (0..<108).map { Float($0) / 100 }, shape: [4, 3, 3, 3]))
  let b = try g.addInitializer(name: "b", Tensor(floats: [0.1, 0.2, 0.3, 0.4], shape: [4]))
  let bn = try ["gamma", "beta", "mean", "var"].map { try g.addInitializer(name: $0, Tensor(floats: [1, 0.5, 0.25, 2], shape: [4])) }
  let conv = try g.addNode(
    opType: "Conv", name: "conv1", inputs: [x, w, b], outputs: ["c"],
    attributes: [Attribute("kernel_shape", .ints([3, 3])), Attribute("pads", .ints([1, 1, 1, 1]))])
  let norm = try g.addNode(
    opType: "BatchNormalization", inputs: [g[conv].outputs[0]] + bn, outputs: ["n"],
    attributes: [Attribute("epsilon", .float(1e-5))])
  let relu = try g.addNode(opType: "Relu", inputs: [g[norm].outputs[0]], outputs: ["y"])
  g.addOutput(g[relu].outputs[0]!)
  g.updateValue(g[relu].outputs[0]!) { $0.type = floatType(.param("N"), .value(4), .value(8), .value(8)) }
  g.updateValue(g[conv].outputs[0]!) { $0.type = floatType(.param("N"), .value(4), .value(8), .value(8)) }
  return g
}

/// An If whose branches read values of the enclosing graph, one of them two levels down.
private func ifReadingOuterValues() throws -> Graph {
  var inner = Graph(name: "inner")
  let innerA = try inner.addOuterReference(name: "a", type: floatType(.value(2)))
  let innerX = try inner.addOuterReference(name: "x")
  let sum = try inner.addNode(opType: "Add", inputs: [innerA, innerX], outputs: ["inner_sum"])
  inner.addOutput(inner[sum].outputs[0]!)
  inner.updateValue(inner[sum].outputs[0]!) { $0.type = floatType(.value(2)) }

  var thenBranch = Graph(name: "then_branch")
  let one = try thenBranch.addInitializer(name: "one", Tensor(floats: [1], shape: [1]))
  let a = try thenBranch.addOuterReference(name: "a", type: floatType(.value(2)))
  let t = try thenBranch.addNode(opType: "Add", inputs: [a, one], outputs: ["t"])
  let c = try thenBranch.addOuterReference(name: "c")
  let nested = try thenBranch.addNode(
    opType: "If", inputs: [c], outputs: ["u"],
    attributes: [Attribute("then_branch", .graph(inner)), Attribute("else_branch", .graph(inner))])
  let r = try thenBranch.addNode(opType: "Mul", inputs: [thenBranch[t].outputs[0], thenBranch[nested].outputs[0]], outputs: ["r"])
  thenBranch.addOutput(thenBranch[r].outputs[0]!)
  thenBranch.updateValue(thenBranch[r].outputs[0]!) { $0.type = floatType(.value(2)) }

  var elseBranch = Graph(name: "else_branch")
  let ex = try elseBranch.addOuterReference(name: "x")
  let e = try elseBranch.addNode(opType: "Neg", inputs: [ex], outputs: ["e"])
  elseBranch.addOutput(elseBranch[e].outputs[0]!)
  elseBranch.updateValue(elseBranch[e].outputs[0]!) { $0.type = floatType(.value(2)) }

  var g = Graph(name: "if_graph")
  let cond = try g.addInput(name: "c", type: .tensor(.bool, shape: []))
  let x = try g.addInput(name: "x", type: floatType(.value(2)))
  try g.addNode(opType: "Add", inputs: [x, x], outputs: ["a"])
  let ifNode = try g.addNode(
    opType: "If", inputs: [cond], outputs: ["y"],
    attributes: [Attribute("then_branch", .graph(thenBranch)), Attribute("else_branch", .graph(elseBranch))])
  g.addOutput(g[ifNode].outputs[0]!)
  g.updateValue(g[ifNode].outputs[0]!) { $0.type = floatType(.value(2)) }
  return g
}

// MARK: Round trips

@Test func convBatchNormReluRoundTrips() throws {
  let (text, parsed) = try expectRoundTrip(model(try convBatchNormRelu()))
  #expect(text.contains("float[4,3,3,3] w = [\"location\": \"#digest:"))
  #expect(text.contains("float[4] b = {0.1, 0.2, 0.3, 0.4}"))
  #expect(text.contains("[conv1] c = Conv <kernel_shape: ints = [3, 3], pads: ints = [1, 1, 1, 1]> (x, w, b)"))
  #expect(parsed.graph.nodeCount == 3)
  // The hashed weight comes back as a stand-in that remembers the original digest.
  let original = try convBatchNormRelu()
  let w = try #require(parsed.graph.constant(parsed.graph.value(named: "w")))
  #expect(w.placeholderDigest == original.constant(original.value(named: "w"))?.digest)
  #expect(w.shape == [4, 3, 3, 3] && w.dtype == .float)
}

@Test func ifBranchesReadOuterValues() throws {
  let (text, parsed) = try expectRoundTrip(model(try ifReadingOuterValues()))
  let g = parsed.graph
  let ifNode = try #require(g.nodeIDs.map { g[$0] }.first { $0.opType == "If" })
  // The If captures what its branches read from the main graph: a, x and c.
  #expect(Set(ifNode.captures.map { g[$0].name }) == ["a", "x", "c"])
  let thenBranch = try #require(ifNode.attribute("then_branch")?.subgraphs.first)
  #expect(Set(thenBranch.outerReferences.map { thenBranch[$0].name }) == ["a", "c", "x"])
  #expect(thenBranch[thenBranch.value(named: "a")!].type == floatType(.value(2)))
  #expect(text.contains("y = If (c) <then_branch: graph = then_branch () => (float[2] r) <"))
}

@Test func outerReferencesAreErrorsInTheMainGraph() throws {
  #expect(throws: TextParseError(line: 1, column: 33, message: "unknown value 'z'")) {
    try Graph(parsing: "g (float x) => (y) { y = Add(x, z) }")
  }
  let g = try Graph(parsing: "g (float x) => (y) { y = Add(x, z) }", allowingOuterReferences: true)
  #expect(g.outerReferences.map { g[$0].name } == ["z"])
  #expect(throws: TextParseError(line: 1, column: 63, message: "unknown value 'q'")) {
    try Graph(parsing: "g (bool c) => (y) { y = If (c) <then_branch: graph = t () => (q) {}, else_branch: graph = e () => (q) {}> }")
  }
}

@Test func customDomainsOverloadsAndOddOperatorNames() throws {
  var g = Graph(name: "custom")
  let x = try g.addInput(name: "x", type: floatType(.value(4)))
  let a = try g.addNode(opType: "FusedMatMul", domain: "com.microsoft", inputs: [x, x], outputs: ["a"],
    attributes: [Attribute("alpha", .float(0.5))])
  let b = try g.addNode(opType: "Op-X", domain: "my-domain", inputs: [g[a].outputs[0]], outputs: ["b"])
  let c = try g.addNode(opType: "Gelu", domain: "ai.onnx", inputs: [g[b].outputs[0]], outputs: ["c"])
  g.updateNode(c) { $0.overload = "fast" }
  g.addOutput(g[c].outputs[0]!)
  let (text, parsed) = try expectRoundTrip(model(g, opsets: [.init(domain: "", version: 17), .init(domain: "com.microsoft", version: 1)]))
  #expect(text.contains("a = com.microsoft.FusedMatMul <alpha: float = 0.5> (x, x)"))
  #expect(text.contains("b = \"my-domain\".\"Op-X\" (a)"))
  #expect(text.contains("c = ai.onnx.Gelu:fast (b)"))
  let nodes = parsed.graph.nodeIDs.map { parsed.graph[$0] }
  #expect(nodes.map(\.domain) == ["com.microsoft", "my-domain", "ai.onnx"])
  #expect(nodes.map(\.opType) == ["FusedMatMul", "Op-X", "Gelu"])
  #expect(nodes[2].overload == "fast")
}

@Test func omittedOptionalInputsAndOutputs() throws {
  var g = Graph(name: "optional")
  let x = try g.addInput(name: "x", type: floatType(.param("N"), .value(4)))
  let scale = try g.addInitializer(name: "scale", Tensor(floats: [2], shape: [1]))
  let d = try g.addNode(opType: "Dropout", inputs: [x, nil, nil], outputs: ["d", ""])
  let r = try g.addNode(opType: "Resize", inputs: [g[d].outputs[0], nil, scale], outputs: ["r"])
  let s = try g.addNode(opType: "Split", inputs: [g[r].outputs[0]], outputs: ["", "s1", ""])
  try g.addNode(opType: "Print", domain: "debug", inputs: [g[s].outputs[1]], outputs: [])
  g.addOutput(g[s].outputs[1]!)
  let (text, parsed) = try expectRoundTrip(model(g))
  #expect(text.contains("d, \"\" = Dropout (x, \"\", \"\")"))
  #expect(text.contains("r = Resize (d, \"\", scale)"))
  #expect(text.contains("\"\", s1, \"\" = Split (r)"))
  #expect(text.contains("  = debug.Print (s1)"))
  let nodes = parsed.graph.nodeIDs.map { parsed.graph[$0] }
  #expect(nodes[0].inputs.count == 3 && nodes[0].inputs[1] == nil && nodes[0].outputs.count == 2 && nodes[0].outputs[1] == nil)
  #expect(nodes[2].outputs.map { $0 == nil } == [true, false, true])
  #expect(nodes[3].outputs.isEmpty)
}

@Test func everyAttributeKindRoundTrips() throws {
  var body = Graph(name: "body")
  let i = try body.addInput(name: "i", type: .tensor(.int64, shape: []))
  let o = try body.addNode(opType: "Identity", inputs: [i], outputs: ["o"])
  body.addOutput(body[o].outputs[0]!)
  let attributes: [Attribute] = [
    Attribute("f", .float(0.1)),
    Attribute("i", .int(-9_223_372_036_854_775_808)),
    Attribute("s", .string(Array("tab\there \"quoted\" back\\slash\nnewline".utf8))),
    Attribute("raw", .string([0x61, 0xFF, 0x00, 0xC3])),
    Attribute("t", .tensor(Tensor(int64s: [1, -2, 3], shape: [3]))),
    Attribute("big", .tensor(Tensor(floats: Array(repeating: 1, count: 100), shape: [10, 10]))),
    Attribute("scalar", .tensor(Tensor(floats: [7], shape: []))),
    Attribute("g", .graph(body)),
    Attribute("sp", .sparseTensor(OpaqueProto(bytes: [0x0A, 0x02, 0xFF]))),
    Attribute("tp", .type(.sequence(.map(key: .string, value: floatType(.param("N")))))),
    Attribute("fs", .floats([1, -0.0, 2.5e-7])),
    Attribute("is", .ints([])),
    Attribute("ss", .strings([Array("a".utf8), []])),
    Attribute("ts", .tensors([Tensor(floats: [1, 2], shape: [2]), Tensor(int64s: [5], shape: [])])),
    Attribute("gs", .graphs([body, body])),
    Attribute("sps", .sparseTensors([OpaqueProto(bytes: [1]), OpaqueProto(bytes: [])])),
    Attribute("tps", .types([.optional(.tensor(.int8, shape: nil)), .sparseTensor(.float, shape: [.value(2), .unknown])])),
    Attribute("empty_floats", .floats([])),
    Attribute("empty_graphs", .graphs([])),
  ]
  var g = Graph(name: "attributes")
  let x = try g.addInput(name: "x", type: .tensor(.int64, shape: []))
  let n = try g.addNode(opType: "Everything", domain: "test", inputs: [x], outputs: ["y"], attributes: attributes)
  g.addOutput(g[n].outputs[0]!)
  let (text, parsed) = try expectRoundTrip(model(g))
  let read = parsed.graph[parsed.graph.nodeIDs[0]].attributes
  #expect(read.map(\.name) == attributes.map(\.name))
  #expect(read[1].int == Int64.min)
  if case .string(let s) = read[3].value { #expect(s == [0x61, 0xFF, 0x00, 0xC3]) } else { Issue.record("raw string") }
  if case .string(let s) = read[2].value { #expect(s == Array("tab\there \"quoted\" back\\slash\nnewline".utf8)) }
  if case .sparseTensor(let p) = read[8].value { #expect(p.bytes == [0x0A, 0x02, 0xFF]) } else { Issue.record("sparse") }
  #expect(text.contains("big: tensor = float[10,10] = [\"location\": \"#digest:"))
  #expect(text.contains("scalar: tensor = float {7.0}"))
  #expect(text.contains("tp: type_proto = seq(map(string, float[N]))"))
  #expect(text.contains("tps: type_protos = [optional(int8[]), sparse_tensor(float[2,?])]"))
  #expect(text.contains("is: ints = []"))
  for k in TextSpelling.attributeTypes {
    #expect(read.contains { TextSpelling.attributeTypeCode(of: $0.value) == k.code }, "attribute type \(k.name)")
  }
}

@Test func functionsWithAttributeReferencesRoundTrip() throws {
  var body = Graph(name: "Scale")
  let x = try body.addInput(name: "x", type: nil)
  let k = try body.addInput(name: "k", type: floatType(.param("N")))
  let n = try body.addNode(opType: "Mul", inputs: [x, k], outputs: ["m"])
  let out = try body.addNode(
    opType: "LeakyRelu", inputs: [body[n].outputs[0]], outputs: ["y"],
    attributes: [Attribute("alpha", .reference(type: 1), refAttrName: "alpha"), Attribute("beta", .reference(type: 0), refAttrName: "beta")])
  body.addOutput(body[out].outputs[0]!)
  var f = Function(name: "Scale", domain: "custom", body: body)
  f.opsetImports = [.init(domain: "", version: 17)]
  f.attributeNames = ["beta"]
  f.attributeDefaults = [Attribute("alpha", .float(0.25))]
  f.docString = "scales"
  f.overload = "v2"

  var g = Graph(name: "main")
  let gx = try g.addInput(name: "x", type: floatType(.param("N")))
  let call = try g.addNode(opType: "Scale", domain: "custom", inputs: [gx, gx], outputs: ["y"])
  g.updateNode(call) { $0.overload = "v2" }
  g.addOutput(g[call].outputs[0]!)
  var m = model(g, opsets: [.init(domain: "", version: 17), .init(domain: "custom", version: 1)])
  m.functions = [f]
  m.producerName = "rebirth"
  m.producerVersion = "0.1"
  m.domain = "test.models"
  m.modelVersion = 3
  m.docString = "a model \"with\" quotes"
  m.metadataProps = [MetadataEntry(key: "k", value: "v")]
  let (text, parsed) = try expectRoundTrip(m)
  #expect(text.contains("Scale <beta, alpha: float = 0.25> (x, float[N] k) => (y) {"))
  #expect(text.contains("y = LeakyRelu <alpha: float = @alpha, beta = @beta> (m)"))
  let pf = try #require(parsed.functions.first)
  #expect(pf.attributeNames == ["beta"] && pf.attributeDefaults.map(\.name) == ["alpha"])
  #expect(pf.overload == "v2" && pf.docString == "scales" && pf.domain == "custom")
  #expect(parsed.modelVersion == 3 && parsed.metadataProps == m.metadataProps && parsed.docString == m.docString)
}

@Test func symbolicDimsAndEveryTypeForm() throws {
  var g = Graph(name: "types")
  let types: [ValueType] = [
    .tensor(.float, shape: [.param("N"), .param("seq len"), .unknown, .value(3)]),
    .tensor(.float, shape: []),
    .tensor(.float16, shape: nil),
    .sequence(.tensor(.int64, shape: [.unknown])),
    .sequence(nil),
    .map(key: .int64, value: .sequence(.tensor(.float, shape: nil))),
    .optional(.tensor(.uint8, shape: [.value(0)])),
    .sparseTensor(.double, shape: [.value(10), .param("K")]),
    .opaque(domain: "com.example", name: "Handle"),
    .opaque(domain: "", name: ""),
    .tensor(DType(rawValue: 24), shape: [.value(1)]),
    .tensor(DType(rawValue: 99), shape: [.value(1)]),
  ]
  for (i, t) in types.enumerated() { try g.addInput(name: "v\(i)", type: t) }
  let n = try g.addNode(opType: "Concat", inputs: [g.inputs[0]], outputs: ["y"])
  g.addOutput(g[n].outputs[0]!)
  let (text, parsed) = try expectRoundTrip(model(g))
  #expect(parsed.graph.inputs.map { parsed.graph[$0].type } == types)
  #expect(text.contains("float[N,\"seq len\",?,3] v0, float v1, float16[] v2, seq(int64[?]) v3"))
  #expect(text.contains("map(int64, seq(float[])) v5, optional(uint8[0]) v6, sparse_tensor(double[10,K]) v7"))
  #expect(text.contains("opaque(com.example, Handle) v8, opaque() v9, float8e8m0[1] v10, dtype99[1] v11"))
}

@Test func namesThatNeedQuoting() throws {
  let names = ["/layer1/Conv_output_0", "a\"b", "back\\slash", "float", "seq", "nan", "Inf", "ünïcode", "with space", "1st", "onnx::Add_3"]
  var g = Graph(name: "main graph")
  var previous = try g.addInput(name: names[0], type: floatType(.param("batch/size")))
  for name in names.dropFirst() {
    let n = try g.addNode(opType: "Relu", name: name + "_node", inputs: [previous], outputs: [name])
    previous = g[n].outputs[0]!
  }
  g.addOutput(previous)
  let (text, parsed) = try expectRoundTrip(model(g))
  #expect(text.contains("\"main graph\" (float[\"batch/size\"] \"/layer1/Conv_output_0\") => (\"onnx::Add_3\")"))
  #expect(text.contains("[\"a\\\"b_node\"] \"a\\\"b\" = Relu (\"/layer1/Conv_output_0\")"))
  #expect(text.contains("\"float\" = Relu (\"back\\\\slash\")"))
  #expect(parsed.graph.nodeIDs.map { parsed.graph[parsed.graph[$0].outputs[0]!].name } == Array(names.dropFirst()))
  #expect(parsed.graph.name == "main graph")
}

@Test func floatsReadBackBitForBit() throws {
  let specials: [Float] = [
    0.1, 1e-30, -0.0, 0, .nan, -.nan, .infinity, -.infinity, .leastNonzeroMagnitude, -.leastNormalMagnitude,
    .greatestFiniteMagnitude, 1 / 3, 16_777_217, 1e20, -123.456,
  ]
  var g = Graph(name: "floats")
  let x = try g.addInput(name: "x", type: floatType(.value(specials.count)))
  let w = try g.addInitializer(name: "w", Tensor(floats: specials, shape: [specials.count]))
  let doubles: [Double] = [0.1, -0.0, .nan, .infinity, 5e-324, 1.7976931348623157e308, 1 / 3]
  let d = try g.addInitializer(name: "d", tensor(.double, [doubles.count], bytes: bytes(doubles)))
  let n = try g.addNode(opType: "Add", inputs: [x, w, d], outputs: ["y"],
    attributes: specials.enumerated().map { Attribute("a\($0.offset)", .float($0.element)) } + [Attribute("all", .floats(specials))])
  g.addOutput(g[n].outputs[0]!)
  let options = TextOptions(maxInlineElements: 64)
  let (text, parsed) = try expectRoundTrip(model(g), options: options)
  #expect(text.contains("{0.1, 1e-30, -0.0, 0.0, nan, -nan, inf, -inf, 1e-45, -1.1754944e-38, 3.4028235e+38,"))
  let pw = try #require(parsed.graph.constant(parsed.graph.value(named: "w"))?.floats)
  #expect(pw.map(\.bitPattern) == specials.map(\.bitPattern))
  let pd = try #require(parsed.graph.constant(parsed.graph.value(named: "d")))
  #expect(Array(pd.rawBytes) == bytes(doubles))
  let node = parsed.graph[parsed.graph.nodeIDs[0]]
  #expect(specials.indices.allSatisfy { node.attributes[$0].float?.bitPattern == specials[$0].bitPattern })
  #expect(node.attribute("all")?.floats?.map(\.bitPattern) == specials.map(\.bitPattern))
}

@Test(arguments: [
  (DType.uint8, 3, [UInt8]([0, 1, 255])), (.int8, 3, [0x80, 0x7F, 0xFF]), (.bool, 3, [1, 0, 1]),
  (.uint16, 3, [0xFF, 0xFF, 0, 1, 2, 3]), (.int16, 3, [0x00, 0x80, 0xFF, 0xFF, 7, 0]),
  (.float16, 3, [0x00, 0x3C, 0x00, 0x7E, 0x00, 0x80]), (.bfloat16, 3, [0x80, 0x3F, 0xC0, 0x7F, 0, 0]),
  (.int32, 3, bytes([Int32.min, -1, Int32.max])), (.uint32, 3, bytes([UInt32.max, 0, 5])),
  (.int64, 3, bytes([Int64.min, 0, Int64.max])), (.uint64, 3, bytes([UInt64.max, 1, 0])),
  (.complex64, 3, bytes([Float(1), -2, 0.5, .infinity, 0, -0.0])), (.complex128, 3, bytes([1.5, -2.0, 0, 0, 1e300, -1e-300])),
  (.float8e4m3fn, 3, [0x7F, 0x00, 0x38]), (.float8e5m2fnuz, 3, [0x80, 0x01, 0xFF]),
  (.uint4, 3, [0x21, 0x0F]), (.int4, 3, [0x8F, 0x07]), (.float4e2m1, 4, [0xF1, 0xA0]),
] as [(DType, Int, [UInt8])])
func everyElementTypeReadsBackBitForBit(dtype: DType, count: Int, data: [UInt8]) throws {
  let t = tensor(dtype, [count], bytes: data)
  var g = Graph(name: "dtypes")
  let w = try g.addInitializer(name: "w", t)
  let n = try g.addNode(opType: "Identity", inputs: [w], outputs: ["y"], attributes: [Attribute("value", .tensor(t))])
  g.addOutput(g[n].outputs[0]!)
  let (_, parsed) = try expectRoundTrip(model(g))
  let pw = try #require(parsed.graph.constant(parsed.graph.value(named: "w")))
  #expect(pw.dtype == dtype && pw.shape == t.shape && Array(pw.rawBytes) == Array(t.rawBytes))
  #expect(pw.placeholderDigest == nil)
  let pa = try #require(parsed.graph[parsed.graph.nodeIDs[0]].attribute("value")?.tensor)
  #expect(Array(pa.rawBytes) == Array(t.rawBytes))
}

@Test func stringTensorsAndInputDefaults() throws {
  var g = Graph(name: "defaults")
  let labels = Tensor(strings: [Array("cat".utf8), Array("\"dog\"".utf8), [0xFE]], shape: [3])!
  let x = try g.addInput(name: "x", type: floatType(.param("N")), default: Tensor(floats: [1, 2], shape: [2]))
  let l = try g.addInitializer(name: "labels", labels)
  let retyped = try g.addInitializer(name: "shape", Tensor(int64s: [1, 2], shape: [2]), type: .tensor(.int64, shape: [.param("R")]))
  let n = try g.addNode(opType: "Lookup", domain: "test", inputs: [x, l, retyped], outputs: ["y"])
  g.addOutput(g[n].outputs[0]!)
  let (text, parsed) = try expectRoundTrip(model(g))
  #expect(text.contains("defaults (float[N] x) => (y) <\n  float[2] x = {1.0, 2.0},\n  string[3] labels = {\"cat\", \"\\\"dog\\\"\", \"\\xfe\"},"))
  #expect(text.contains("  int64[R] shape\n>"))
  let px = try #require(parsed.graph.value(named: "x"))
  guard case .input(let d?) = parsed.graph[px].definition else { Issue.record("x lost its default"); return }
  #expect(d.floats == [1, 2])
  #expect(parsed.graph[parsed.graph.value(named: "shape")!].type == .tensor(.int64, shape: [.param("R")]))
  if case .strings(let s) = parsed.graph.constant(parsed.graph.value(named: "labels"))?.payload { #expect(s.last == [0xFE]) }
}

@Test func hashedTensorsPrintTheSameAfterReading() throws {
  var g = Graph(name: "hashed")
  let x = try g.addInput(name: "x", type: floatType(.value(20)))
  let a = try g.addInitializer(name: "a", Tensor(floats: (0..<20).map(Float.init), shape: [20]))
  let b = try g.addInitializer(name: "b", Tensor(floats: (0..<20).map { Float($0) + 1 }, shape: [20]))
  let h = try g.addInitializer(name: "h", tensor(.float16, [20], bytes: Array(repeating: 0x3C, count: 40)))
  let i = try g.addInitializer(name: "i", tensor(.int4, [33], bytes: Array(repeating: 0x12, count: 17)))
  let s = try g.addInitializer(name: "s", Tensor(strings: (0..<17).map { Array("s\($0)".utf8) }, shape: [17])!)
  let n = try g.addNode(opType: "Sum", inputs: [x, a, b, h, i, s], outputs: ["y"])
  g.addOutput(g[n].outputs[0]!)
  let (text, parsed) = try expectRoundTrip(model(g))
  for name in ["a", "b", "h", "i", "s"] {
    let original = try #require(g.constant(g.value(named: name)))
    #expect(text.contains("\(name) = [\"location\": \"#digest:\(TensorText.hex(original.digest))\"]"))
    let standIn = try #require(parsed.graph.constant(parsed.graph.value(named: name)))
    #expect(standIn.placeholderDigest == original.digest && standIn.shape == original.shape && standIn.dtype == original.dtype)
  }
  // Stand-ins are deterministic and differ when their digests do.
  let again = try Model(parsing: text)
  let pa = try #require(parsed.graph.constant(parsed.graph.value(named: "a")))
  let pb = try #require(parsed.graph.constant(parsed.graph.value(named: "b")))
  #expect(pa.hasSameContent(as: again.graph.constant(again.graph.value(named: "a"))!))
  #expect(!pa.hasSameContent(as: pb))
  #expect(pa.floats!.allSatisfy { $0 >= -1 && $0 < 1 })
  // A stand-in keeps its digest even when small enough to print by value.
  let small = try Model(parsing: "<ir_version: 8, opset_import: []> g () => (w) <float[2] w = [\"location\": \"#digest:00000000000000ff\"]> {}")
  #expect(small.text().contains("float[2] w = [\"location\": \"#digest:00000000000000ff\"]"))
}

@Test func valueInfoCanBeLeftOut() throws {
  let g = try convBatchNormRelu()
  let text = g.text(options: TextOptions(includeValueInfo: false))
  #expect(!text.contains("float[N,4,8,8] c"))
  #expect(try Graph(parsing: text).text(options: TextOptions(includeValueInfo: false)) == text)
  #expect(try Graph(parsing: g.text()).text() == g.text())
}

@Test func printingIsDeterministicAndFollowsTopologicalOrder() throws {
  var g = Graph(name: "order")
  let x = try g.addInput(name: "x", type: nil)
  let late = try g.addNode(opType: "Relu", inputs: [x], outputs: ["late"])
  let early = try g.addNode(opType: "Neg", inputs: [x], outputs: ["early"])
  let join = try g.addNode(opType: "Add", inputs: [g[early].outputs[0], g[late].outputs[0]], outputs: ["y"])
  g.addOutput(g[join].outputs[0]!)
  // Rewire so that node 0 reads node 1's output: the printed order must follow data flow.
  g.setInput(0, of: late, to: g[early].outputs[0])
  let text = g.text()
  #expect(text == g.text())
  #expect(text == """
    order (x) => (y) {
      early = Neg (x)
      late = Relu (early)
      y = Add (early, late)
    }

    """)
}

// MARK: Golden text

@Test func goldenSmallGraph() throws {
  var g = Graph(name: "small")
  let x = try g.addInput(name: "x", type: floatType(.param("N"), .value(2)))
  let w = try g.addInitializer(name: "w", Tensor(floats: [0.1, -0.0], shape: [2]))
  let s = try g.addNode(opType: "Mul", inputs: [x, w], outputs: ["s"])
  let y = try g.addNode(opType: "Relu", name: "relu", inputs: [g[s].outputs[0]], outputs: ["y"])
  g.addOutput(g[y].outputs[0]!)
  g.updateValue(g[s].outputs[0]!) { $0.type = floatType(.param("N"), .value(2)) }
  let expected = """
    small (float[N,2] x) => (y) <
      float[2] w = {0.1, -0.0},
      float[N,2] s
    > {
      s = Mul (x, w)
      [relu] y = Relu (s)
    }

    """
  #expect(g.text() == expected)
  #expect(try Graph(parsing: expected).text() == expected)
}

@Test func goldenModelWithSubgraphAndHashedWeight() throws {
  var thenBranch = Graph(name: "then_g")
  let a = try thenBranch.addOuterReference(name: "a")
  let t = try thenBranch.addNode(opType: "Identity", inputs: [a], outputs: ["t"])
  thenBranch.addOutput(thenBranch[t].outputs[0]!)
  var elseBranch = Graph(name: "else_g")
  let one = try elseBranch.addInitializer(name: "one", Tensor(floats: [1], shape: []))
  let e = try elseBranch.addNode(opType: "Sub", inputs: [try elseBranch.addOuterReference(name: "a"), one], outputs: ["e"])
  elseBranch.addOutput(elseBranch[e].outputs[0]!)

  var g = Graph(name: "main")
  let c = try g.addInput(name: "c", type: .tensor(.bool, shape: []))
  let x = try g.addInput(name: "x", type: floatType(.value(32)))
  let w = try g.addInitializer(name: "w", Tensor(floats: Array(repeating: 0.5, count: 32), shape: [32]))
  try g.addNode(opType: "Mul", inputs: [x, w], outputs: ["a"])
  let ifNode = try g.addNode(
    opType: "If", inputs: [c], outputs: ["y"],
    attributes: [Attribute("then_branch", .graph(thenBranch)), Attribute("else_branch", .graph(elseBranch))])
  g.addOutput(g[ifNode].outputs[0]!)
  var m = model(g)
  m.producerName = "rebirth"
  let digest = TensorText.hex(g.constant(w)!.digest)
  let expected = """
    <
      ir_version: 8,
      opset_import: ["" : 17],
      producer_name: "rebirth"
    >
    main (bool c, float[32] x) => (y) <
      float[32] w = ["location": "#digest:\(digest)"]
    > {
      a = Mul (x, w)
      y = If (c) <then_branch: graph = then_g () => (t) {
        t = Identity (a)
      }, else_branch: graph = else_g () => (e) <
        float one = {1.0}
      > {
        e = Sub (a, one)
      }>
    }

    """
  #expect(m.text() == expected)
  #expect(try Model(parsing: expected).text() == expected)
}

// MARK: Reading text from elsewhere

/// Text as `onnx.printer.to_text` (onnx 1.23) writes it: three-space indents, integral floats
/// without a point, attributes with subgraphs after the inputs.
@Test func readsWhatOnnxPrinterWrites() throws {
  let text = """
    <
       ir_version: 8,
       opset_import: ["" : 17, "com.microsoft" : 1]
    >
    g (bool c, float[2] x) => (float[2] y)
       <float[1] one =  {1}, float[2] t>
    {
       t = com.microsoft.FusedThing <alpha: float = 0.1, beta: float = -0, n: float = nan, k: ints = [1, 2], s: strings = ["a", "b\\"c"], e: ints = []> (x, "", one)
       y = If (c) <then_branch: graph = then_g () => (float[2] r) {
          r = Add (t, one)
       }, else_branch: graph = else_g () => (float[2] r2)
          <float[2] q>
    {
          q = Neg (t)
          r2 = Identity (q)
       }>
    }
    """
  let m = try Model(parsing: text)
  try m.graph.verify()
  let fused = m.graph[m.graph.nodeIDs[0]]
  #expect(fused.domain == "com.microsoft" && fused.inputs[1] == nil)
  #expect(fused.attribute("beta")?.float?.sign == .minus)
  #expect(fused.attribute("s")?.value.stringsValue == [Array("a".utf8), Array("b\"c".utf8)])
  #expect(m.graph.constant(m.graph.value(named: "one"))?.floats == [1])
  try expectRoundTrip(m)
}

@Test func readsHandWrittenShorthand() throws {
  // Untyped attributes, inline input defaults, comments, the legacy empty-name form.
  let g = try Graph(parsing: """
    g (float[2] x = {1, 2}, float[2] z) => (y) {   # a comment
      t = Foo <a = 1, b = 2.5, c = "s", d = [1, 2], e = [1, 2.5], f = ["x"], t = float[2] {3, 4}, ty = int64[N]> (x,,z)
      y = Bar <body = b () => (q) { q = Identity (t) }> (t)
    }
    """)
  try g.verify()
  let foo = g[g.nodeIDs[0]]
  #expect(foo.inputs.count == 3 && foo.inputs[1] == nil)
  #expect(foo.attribute("a")?.int == 1 && foo.attribute("b")?.float == 2.5 && foo.attribute("c")?.string == "s")
  #expect(foo.attribute("d")?.ints == [1, 2] && foo.attribute("e")?.floats == [1, 2.5])
  #expect(foo.attribute("t")?.tensor?.floats == [3, 4])
  if case .type(let t) = foo.attribute("ty")?.value { #expect(t == .tensor(.int64, shape: [.param("N")])) } else { Issue.record("ty") }
  #expect(g[g.nodeIDs[1]].captures == [g.value(named: "t")!])
  if case .input(let d?) = g[g.value(named: "x")!].definition { #expect(d.floats == [1, 2]) } else { Issue.record("default") }
}

// MARK: Errors

@Test(arguments: [
  ("g (float x) => (y) { y = Relu(x) ", 1, 34, "expected '}' closing the nodes, found end of input"),
  ("g (float x) => (y) {\n  y = Relu(x\n}", 3, 1, "expected ')' closing the node's inputs, found '}'"),
  ("g (float x) = > (y) {}", 1, 13, "expected '=>' between the inputs and the outputs, found '='"),
  ("g (float x) => (y) {\n  y = Relu(t)\n  t = Neg(x)\n}", 2, 12, "'t' is read before the node defining it"),
  ("g (float x) => (x) {\n  x = Neg(x)\n}", 2, 3, "value 'x' is defined more than once"),
  ("g (float[2] x) => (y) <float[2] w = {1.0}> { y = Add(x, w) }", 1, 37, "float[2] needs 2 values, found 1"),
  ("g (float[2] x) => (y) <int8[2] w = {1, 300}> { y = Add(x, w) }", 1, 40, "300 is out of range -128...127"),
  ("g (float[2] x) => (y) <float[2] w = {1.0, 1e99}> { y = Add(x, w) }", 1, 43, "1e99 is out of range for float"),
  ("g (float[N] x) => (y) <float[N] w = {1.0}> { y = Add(x, w) }", 1, 37, "tensor data needs a shape of known sizes"),
  ("g (x) => (y) { y = Foo <a: intz = 1> (x) }", 1, 28, "unknown attribute type 'intz'"),
  ("g (x) => (y) { y = Foo <a = []> (x) }", 1, 29, "an empty list needs its type, as in 'axes: ints = []'"),
  ("g (x) => (y) { y = Foo <a: int = 1.5> (x) }", 1, 34, "expected an integer, found a float"),
  ("g (x) => (y) { y = Foo <a: ints = 1> (x) }", 1, 35, "expected a list in '[ ]' for an attribute of type ints, found a number"),
  ("g (x) => (y) { y = Foo (x) }\nextra", 2, 1, "expected the end of the text after the graph, found 'extra'"),
  ("g (x) => (y) <float[2] w = [\"location\": \"w.bin\"]> { y = Foo (x) }", 1, 28,
   "external tensor data is not supported; a tensor printed by digest reads [\"location\": \"#digest:<16 hex digits>\"]"),
  ("g (x) => (y) { y = Foo <s = \"abc> (x) }", 1, 29, "unterminated string"),
  ("g (tensor(float) x) => (y) {}", 1, 10, "expected ')' closing the inputs, found '('"),
  ("g (x) => (y) <float[9999999999,9999999999] w = [\"location\": \"#digest:0000000000000001\"]> { y = Foo (x) }", 1, 48,
   "cannot make a stand-in float[9999999999, 9999999999] tensor (too large, or no fixed-width type)"),
] as [(String, Int, Int, String)])
func parseErrorsSayWhereAndWhat(text: String, line: Int, column: Int, message: String) {
  do {
    let g = try Graph(parsing: text)
    Issue.record("parsed: \(g.text())")
  } catch {
    if message.isEmpty { return }  // only checks that the text is refused
    #expect(error == TextParseError(line: line, column: column, message: message))
  }
}

@Test func modelErrors() {
  #expect(throws: TextParseError(line: 2, column: 3, message: "unknown model field 'ir_versio'")) {
    try Model(parsing: "<\n  ir_versio: 8\n>\ng () => () {}")
  }
  #expect(throws: TextParseError(line: 1, column: 44, message: "expected a function name, found end of input")) {
    try Model(parsing: "<ir_version: 8> g () => () {} <domain: \"d\">")
  }
  let deep = "g (" + String(repeating: "seq(", count: 100) + "float" + String(repeating: ")", count: 100) + " x) => () {}"
  #expect(throws: TextParseError(line: 1, column: 256, message: "nested more than 64 levels deep")) { try Graph(parsing: deep) }
}

// MARK: Robustness

/// Subgraphs nested deeper than the parser's limit are refused, not a stack overflow.
@Test func deeplyNestedSubgraphs() throws {
  func text(depth: Int) -> String {
    var graph = "leaf () => () {}"
    for i in 0..<depth { graph = "g\(i) () => () {\n  = If (c) <then_branch: graph = \(graph)>\n}" }
    return "main (bool c) => () {\n  = If (c) <then_branch: graph = \(graph)>\n}"
  }
  let g = try Graph(parsing: text(depth: 20))
  try g.verify()
  #expect(try Graph(parsing: g.text()).text() == g.text())
  #expect(throws: TextParseError.self) { try Graph(parsing: text(depth: 200)) }
}

/// Random edits of valid texts must never crash the parser; whatever still parses must verify and
/// print to a fixed point.
@Test func randomMutationsNeverCrash() throws {
  let environment = ProcessInfo.processInfo.environment
  let cases = Int(environment["REBIRTH_TEXT_FUZZ_CASES"] ?? "") ?? 4000
  var random = SplitMix64(seed: UInt64(environment["REBIRTH_TEXT_FUZZ_SEED"] ?? "") ?? 20_240_601)
  let bases = try sampleModels().map { $0.model.text(options: TextOptions(maxInlineElements: 4)) } + [
    try Graph(parsing: """
      g (float[2] x = {1, 2}, float[2] z) => (y) {
        t = Foo <a = 1, b = 2.5, c = "s", d = [1, 2], e = [1, 2.5], f = ["x"], t = float[2] {3, 4}, ty = int64[N]> (x,,z)
        y = Bar <body = b () => (q) { q = Identity (t) }> (t)
      }
      """).text()
  ]
  let pool = Array("()[]{}<>,:=@\"#.-+0123456789eaZ_ ?\n\\".utf8)
  var parsedCount = 0
  for i in 0..<cases {
    var bytes = Array(bases[i % bases.count].utf8)
    for _ in 0...(random.next() % 3) {
      let at = Int(random.next() % UInt64(bytes.count + 1))
      switch random.next() % 5 {
      case 0: if at < bytes.count { bytes.removeSubrange(at..<min(bytes.count, at + 1 + Int(random.next() % 4))) }
      case 1: bytes.insert(pool[Int(random.next() % UInt64(pool.count))], at: at)
      case 2: if at < bytes.count { bytes[at] = pool[Int(random.next() % UInt64(pool.count))] }
      case 3:
        let from = Int(random.next() % UInt64(bytes.count))
        bytes.insert(contentsOf: bytes[from..<min(bytes.count, from + 1 + Int(random.next() % 12))], at: at)
      default: if at + 1 < bytes.count { bytes.swapAt(at, at + 1) }
      }
    }
    let text = String(decoding: bytes, as: UTF8.self)
    guard let m = try? Model(parsing: text) else { continue }
    parsedCount += 1
    do {
      try m.graph.verify()
      let printed = m.text()
      let again = try Model(parsing: printed)
      #expect(again.text() == printed, "not a fixed point after mutating into:\n\(text)")
    } catch {
      Issue.record("\(error) after mutating into:\n\(text)\nwhich prints as:\n\(m.text())")
    }
  }
  #expect(parsedCount > cases / 40)
}

// MARK: Data files

/// Models whose text is committed as `Tests/GraphTests/text/<name>.onnxtext`: only ONNX's own
/// syntax (no rebirth extensions), so `check_with_onnx_parser.py` can feed them to `onnx.parser`
/// and `onnx.checker`.
private func sampleModels() throws -> [(name: String, model: Model)] {
  var custom = Graph(name: "custom")
  let cx = try custom.addInput(name: "x", type: floatType(.param("M"), .value(4)))
  let fused = try custom.addNode(
    opType: "FusedMatMul", domain: "com.microsoft", name: "fused", inputs: [cx, cx], outputs: ["a"],
    attributes: [Attribute("alpha", .float(0.5)), Attribute("transB", .int(1))])
  let gelu = try custom.addNode(opType: "Gelu", domain: "com.microsoft", inputs: [custom[fused].outputs[0]], outputs: ["y"])
  custom.addOutput(custom[gelu].outputs[0]!)
  custom.updateValue(custom[gelu].outputs[0]!) { $0.type = floatType(.param("M"), .value(4)) }

  var optional = Graph(name: "optional")
  let ox = try optional.addInput(name: "x", type: floatType(.param("N"), .value(4)))
  let scales = try optional.addInitializer(name: "scales", Tensor(floats: [1, 2], shape: [2]))
  let drop = try optional.addNode(opType: "Dropout", inputs: [ox, nil, nil], outputs: ["d", ""])
  let resize = try optional.addNode(opType: "Resize", inputs: [optional[drop].outputs[0], nil, scales], outputs: ["r"])
  optional.addOutput(optional[resize].outputs[0]!)
  optional.updateValue(optional[resize].outputs[0]!) { $0.type = floatType(.param("N"), .value(8)) }

  var names = Graph(name: "torch_jit")
  var previous = try names.addInput(name: "input.1", type: floatType(.param("batch size"), .value(8)))
  for name in ["/layer1/Relu_output_0", "onnx::Neg_3", "float", "a\"quoted\"\\name"] {
    let n = try names.addNode(opType: "Relu", name: "/layer1/" + name, inputs: [previous], outputs: [name])
    previous = names[n].outputs[0]!
  }
  names.addOutput(previous)
  names.updateValue(previous) { $0.type = floatType(.param("batch size"), .value(8)) }

  var dtypes = Graph(name: "dtypes")
  let floats: [Float] = [0.1, 1e-30, -0.0, .nan, .infinity, -.infinity, .leastNonzeroMagnitude, 3.4028235e38]
  var dtypeInputs = [try dtypes.addInitializer(name: "floats", Tensor(floats: floats, shape: [2, 4]))]
  dtypeInputs.append(try dtypes.addInitializer(name: "halves", tensor(.float16, [3], bytes: [0x00, 0x3C, 0x00, 0x7E, 0x00, 0x80])))
  dtypeInputs.append(try dtypes.addInitializer(name: "int8s", tensor(.int8, [3], bytes: [0x80, 0x7F, 0xFF])))
  dtypeInputs.append(try dtypes.addInitializer(name: "uint64s", tensor(.uint64, [1], bytes: bytes([UInt64.max]))))
  dtypeInputs.append(try dtypes.addInitializer(name: "bools", tensor(.bool, [2], bytes: [1, 0])))
  dtypeInputs.append(try dtypes.addInitializer(name: "doubles", tensor(.double, [2], bytes: bytes([0.1, -1e-300]))))
  dtypeInputs.append(try dtypes.addInitializer(name: "strings", Tensor(strings: [Array("a b".utf8), []], shape: [2])!))
  dtypeInputs.append(try dtypes.addInitializer(name: "scalar", Tensor(int64s: [42], shape: [])))
  let seq = try dtypes.addNode(opType: "SequenceConstruct", inputs: [dtypeInputs[0]], outputs: ["seq"])
  dtypes.addOutput(dtypes[seq].outputs[0]!)
  dtypes.updateValue(dtypes[seq].outputs[0]!) { $0.type = .sequence(floatType(.value(2), .value(4))) }
  for id in dtypeInputs.dropFirst() { dtypes.addOutput(id) }

  var body = Graph(name: "ScaledRelu")
  let bx = try body.addInput(name: "x", type: nil)
  let mul = try body.addNode(
    opType: "Mul", inputs: [bx, try body.addInput(name: "s", type: nil)], outputs: ["m"])
  let leaky = try body.addNode(
    opType: "LeakyRelu", inputs: [body[mul].outputs[0]], outputs: ["y"],
    attributes: [Attribute("alpha", .reference(type: 1), refAttrName: "alpha")])
  body.addOutput(body[leaky].outputs[0]!)
  var function = Function(name: "ScaledRelu", domain: "local", body: body)
  function.opsetImports = [.init(domain: "", version: 17)]
  function.attributeDefaults = [Attribute("alpha", .float(0.01))]
  var main = Graph(name: "main")
  let mx = try main.addInput(name: "x", type: floatType(.param("N")))
  let two = try main.addInitializer(name: "two", Tensor(floats: [2], shape: []))
  let call = try main.addNode(opType: "ScaledRelu", domain: "local", inputs: [mx, two], outputs: ["y"],
    attributes: [Attribute("alpha", .float(0.2))])
  main.addOutput(main[call].outputs[0]!)
  main.updateValue(main[call].outputs[0]!) { $0.type = floatType(.param("N")) }
  var withFunction = model(main, opsets: [.init(domain: "", version: 17), .init(domain: "local", version: 1)])
  withFunction.functions = [function]
  withFunction.producerName = "rebirth"
  withFunction.docString = "a model with a local function"
  withFunction.metadataProps = [MetadataEntry(key: "source", value: "TextFormTests")]

  return [
    ("conv_bn_relu", model(try convBatchNormRelu())),
    ("if_outer_values", model(try ifReadingOuterValues())),
    ("custom_domain", model(custom, opsets: [.init(domain: "", version: 17), .init(domain: "com.microsoft", version: 1)])),
    ("omitted_optionals", model(optional)),
    ("quoted_names", model(names)),
    ("element_types", model(dtypes)),
    ("local_function", withFunction),
  ]
}

/// Each sample model prints exactly as its committed file, which reads back to the same text.
/// With `REBIRTH_RECORD_TEXT=1` the files are written instead (and the test fails, to say so).
@Test func textFilesMatchThePrinter() throws {
  let folder = TestEnvironment.repositoryRoot.appendingPathComponent("Tests/GraphTests/text")
  let recording = ProcessInfo.processInfo.environment["REBIRTH_RECORD_TEXT"] == "1"
  for (name, model) in try sampleModels() {
    let url = folder.appendingPathComponent(name + ".onnxtext")
    let text = try expectRoundTrip(model).text
    if recording {
      try text.write(to: url, atomically: true, encoding: .utf8)
      Issue.record("recorded \(url.path)")
      continue
    }
    let file = try String(contentsOf: url, encoding: .utf8)
    #expect(text == file, "\(name): the printer's output differs from the file")
    #expect(try Model(parsing: file).text() == file)
  }
}

/// `check_with_onnx_parser.py --write-onnx-printed` stores what `onnx.printer` prints after
/// `onnx.parser` read each file; rebirth reads that and prints the original file again.
@Test func readsOnnxPrinterOutputOfEveryFile() throws {
  let folder = TestEnvironment.repositoryRoot.appendingPathComponent("Tests/GraphTests/text")
  let printed = folder.appendingPathComponent("onnx-printed")
  let files = try FileManager.default.contentsOfDirectory(atPath: printed.path).filter { $0.hasSuffix(".txt") }.sorted()
  #expect(files.count == (try sampleModels()).count)
  for file in files {
    let onnxText = try String(contentsOf: printed.appendingPathComponent(file), encoding: .utf8)
    let original = try String(contentsOf: folder.appendingPathComponent(file.dropLast(4) + ".onnxtext"), encoding: .utf8)
    let m = try Model(parsing: onnxText)
    try m.graph.verify()
    var expected = try Model(parsing: original)
    // onnx.printer (1.23) leaves out the defaults of a function's attributes.
    for i in expected.functions.indices { expected.functions[i].attributeDefaults = [] }
    #expect(m.text() == expected.text(), "\(file)")
  }
}

extension Attribute.Value {
  fileprivate var stringsValue: [[UInt8]]? {
    if case .strings(let s) = self { return s }
    return nil
  }
}
