import Foundation
import Graph

/// What `rebirth inspect` shows, computed once and rendered as text or JSON.
struct InspectReport {
  struct Port: Encodable {
    let name: String
    let type: String
  }

  let path: String
  let irVersion: Int64
  let opsets: [String: Int64]
  let producer: String
  let inputs: [Port]
  let outputs: [Port]
  let statistics: GraphStatistics

  init(model: Model, path: String) {
    self.path = path
    irVersion = model.irVersion
    opsets = Dictionary(
      model.opsetImports.map { ($0.domain.isEmpty ? "ai.onnx" : $0.domain, $0.version) }, uniquingKeysWith: { a, _ in a })
    producer = [model.producerName, model.producerVersion].filter { !$0.isEmpty }.joined(separator: " ")
    var inferred = model
    inferred.inferShapes()
    let g = inferred.graph
    inputs = g.inputs.filter { g.constant($0) == nil }.map { Port(name: g[$0].name, type: describe(g[$0].type)) }
    outputs = g.outputs.map { Port(name: g[$0].name, type: describe(g[$0].type)) }
    statistics = inferred.graph.statistics()
  }

  var text: String {
    let s = statistics
    var out = "\(path)\n"
    out += "  ir_version \(irVersion), opsets \(opsets.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))"
    out += producer.isEmpty ? "\n" : ", producer \(producer)\n"
    out += "inputs:\n" + inputs.map { "  \($0.name): \($0.type)\n" }.joined()
    out += "outputs:\n" + outputs.map { "  \($0.name): \($0.type)\n" }.joined()
    out += "nodes: \(s.topLevelNodeCount)"
    out += s.nodeCount != s.topLevelNodeCount ? " (\(s.nodeCount) with subgraphs)\n" : "\n"
    out += "parameters: \(s.parameterCount) (\(formatBytes(s.parameterBytes)))\n"
    out += s.bytesByDType.sorted { $0.key < $1.key }.map { "  \($0.key): \(formatBytes($0.value))\n" }.joined()
    out += s.macSummary + "\n"
    let width = s.opTypeHistogram.map(\.opType.count).max() ?? 0
    out += "ops:\n"
    out += s.opTypeHistogram.sorted { $0.count != $1.count ? $0.count > $1.count : $0.opType < $1.opType }
      .map { "  \($0.opType.padding(toLength: width, withPad: " ", startingAt: 0))  \($0.count)\n" }.joined()
    return out
  }

  var json: String {
    struct Document: Encodable {
      let path: String
      let ir_version: Int64
      let opsets: [String: Int64]
      let producer: String
      let inputs: [Port]
      let outputs: [Port]
      let nodes: Int
      let nodes_with_subgraphs: Int
      let ops: [String: Int]
      let parameters: Int
      let parameter_bytes: Int
      let bytes_by_dtype: [String: Int]
      let macs: Int
      let nodes_with_unknown_macs: Int
      let symbolic_dims_taken_as_1: Bool
    }
    let s = statistics
    let doc = Document(
      path: path, ir_version: irVersion, opsets: opsets, producer: producer, inputs: inputs, outputs: outputs,
      nodes: s.topLevelNodeCount, nodes_with_subgraphs: s.nodeCount,
      ops: Dictionary(s.opTypeHistogram.map { ($0.opType, $0.count) }, uniquingKeysWith: +),
      parameters: s.parameterCount, parameter_bytes: s.parameterBytes, bytes_by_dtype: s.bytesByDType, macs: s.macs,
      nodes_with_unknown_macs: s.unknownMACNodes, symbolic_dims_taken_as_1: s.assumedSymbolicDimsAs1)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return (try? encoder.encode(doc)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
  }
}

/// 1234567 → "1.2 MB".
func formatBytes(_ bytes: Int) -> String {
  let units = ["B", "KB", "MB", "GB", "TB"]
  var value = Double(bytes)
  var unit = 0
  while value >= 1000, unit < units.count - 1 {
    value /= 1000
    unit += 1
  }
  return unit == 0 ? "\(bytes) B" : String(format: "%.1f", value) + " " + units[unit]
}

/// A value type as ONNX's textual syntax writes it: `float[N,3,224,224]`.
func describe(_ type: ValueType?) -> String {
  guard let type else { return "?" }
  switch type {
  case .tensor(let dtype, let shape):
    guard let shape else { return "\(dtype)" }
    return "\(dtype)[\(shape.map(\.description).joined(separator: ","))]"
  case .sparseTensor(let dtype, let shape):
    return "sparse_tensor(\(describe(.tensor(dtype, shape: shape))))"
  case .sequence(let element): return "seq(\(describe(element)))"
  case .optional(let element): return "optional(\(describe(element)))"
  case .map(let key, let value): return "map(\(key), \(describe(value)))"
  case .opaque(let domain, let name): return "opaque(\(domain), \(name))"
  }
}
