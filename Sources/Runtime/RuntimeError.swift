import Graph

/// A failure to plan or run a graph. The message names the node (its name, or the value it
/// produces when it has none) and its operator, and the attribute or input at fault:
///
///     node 'conv1' (Conv): attribute 'auto_pad': unsupported value 'FOO'
///     node producing 'logits' (Gemm): cannot multiply A' [2, 3] by B' [2, 3]
///     unsupported operator 'NonMaxSuppression' (node 'nms')
public struct RuntimeError: Error, Equatable, Sendable, CustomStringConvertible {
  public enum Kind: Equatable, Sendable {
    /// No kernel implements the operator.
    case unsupportedOperator
    /// An attribute is missing, has the wrong type, or has a value the kernel does not support.
    case attribute(String)
    /// An input has a dtype or shape the operator does not accept (or the runtime does not support).
    case input
    /// The graph itself cannot run (cycle, missing feed, unknown output name).
    case graph
    /// A kernel broke its contract (a bug in the runtime).
    case `internal`
  }

  public var kind: Kind
  /// The node at fault; nil for graph-level errors.
  public var node: NodeLabel?
  public var message: String

  public init(kind: Kind, node: NodeLabel?, message: String) {
    self.kind = kind
    self.node = node
    self.message = message
  }

  /// A graph-level error (bad feeds, unknown output names, cycles).
  public static func graph(_ message: String) -> RuntimeError {
    RuntimeError(kind: .graph, node: nil, message: message)
  }

  public var description: String {
    guard let node else { return message }
    switch kind {
    case .unsupportedOperator: return "unsupported operator '\(node.opType)' (node \(node.reference))"
    case .attribute(let name): return "node \(node.reference) (\(node.opType)): attribute '\(name)': \(message)"
    default: return "node \(node.reference) (\(node.opType)): \(message)"
    }
  }
}

/// Which node an error is about.
public struct NodeLabel: Sendable, Equatable {
  /// The node's name; empty for unnamed nodes.
  public let name: String
  /// The operator, prefixed by its domain outside the default one (`com.microsoft.FusedConv`).
  public let opType: String
  /// The node's first output, which identifies unnamed nodes.
  public let output: String

  public init(name: String, opType: String, output: String = "") {
    self.name = name
    self.opType = opType
    self.output = output
  }

  init(_ node: Node, in graph: Graph) {
    let op = node.domain.isEmpty || node.domain == "ai.onnx" ? node.opType : "\(node.domain).\(node.opType)"
    let output = node.outputs.compactMap { $0 }.first.map { graph[$0].name } ?? ""
    self.init(name: node.name, opType: op, output: output)
  }

  /// `'conv1'`, or `producing 'y'` for an unnamed node.
  public var reference: String {
    if !name.isEmpty { return "'\(name)'" }
    return output.isEmpty ? "(unnamed)" : "producing '\(output)'"
  }

  public func error(_ message: String) -> RuntimeError {
    RuntimeError(kind: .input, node: self, message: message)
  }

  public func attributeError(_ attribute: String, _ message: String) -> RuntimeError {
    RuntimeError(kind: .attribute(attribute), node: self, message: message)
  }
}

/// `[1, 3, 224, 224]`.
func describe(shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }
