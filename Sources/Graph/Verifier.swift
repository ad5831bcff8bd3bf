/// A broken invariant of the IR, found by `Graph.verify()`.
public struct VerificationError: Error, CustomStringConvertible, Equatable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

extension Graph {
  /// Checks the IR's invariants: every value defined once and consistently, use lists equal to the
  /// places values are read, no dangling reference, graph outputs produced, no cycle, initializer
  /// data matching its declared type, and the same of every subgraph. Runs after every pass in
  /// tests and debug builds.
  public func verify() throws(VerificationError) {
    try verifyDefinitions()
    try verifyUseLists()
    if topologicalOrder() == nil {
      let names = nodesOnCycles().prefix(5).map { describe($0) }.joined(separator: ", ")
      throw VerificationError("graph '\(name)' has a cycle through \(names)")
    }
    for id in nodeIDs {
      for attribute in self[id].attributes {
        for subgraph in attribute.subgraphs {
          do { try subgraph.verify() } catch {
            throw VerificationError("in attribute '\(attribute.name)' of \(describe(id)): \(error.message)")
          }
        }
      }
    }
  }

  func describe(_ node: NodeID) -> String {
    let n = self[node]
    return n.name.isEmpty ? "\(n.opType) node \(node)" : "\(n.opType) '\(n.name)'"
  }

  private func verifyDefinitions() throws(VerificationError) {
    let inputs = Set(self.inputs)
    for id in valueIDs {
      let v = self[id]
      guard value(named: v.name) == id else { throw VerificationError("value '\(v.name)' is not registered under its name") }
      switch v.definition {
      case .node(let node, let output):
        guard contains(node), self[node].output(output) == id else {
          throw VerificationError("value '\(v.name)' claims a producer that does not define it")
        }
      case .input:
        guard inputs.contains(id) else { throw VerificationError("value '\(v.name)' is an input not listed as one") }
      case .initializer(let tensor):
        if let t = v.type, case .tensor(let dtype, let shape) = t {
          guard dtype == tensor.dtype else {
            throw VerificationError("initializer '\(v.name)' holds \(tensor.dtype) but is declared \(dtype)")
          }
          if let shape, shape.count != tensor.shape.count || zip(shape, tensor.shape).contains(where: { d, n in
            if case .value(let k) = d { return k != n } else { return false }
          }) {
            throw VerificationError("initializer '\(v.name)' has shape \(tensor.shape) but is declared \(shape)")
          }
        }
      case .outerScope: break
      }
    }
    for id in nodeIDs {
      for (i, output) in self[id].outputs.enumerated() {
        guard let output else { continue }
        guard contains(output), case .node(let p, let slot) = self[output].definition, p == id, slot == i else {
          throw VerificationError("output \(i) of \(describe(id)) is not defined by it")
        }
      }
    }
    for (i, output) in outputs.enumerated() {
      guard contains(output) else { throw VerificationError("graph output \(i) refers to a removed value") }
    }
    for input in inputs where !contains(input) { throw VerificationError("a graph input refers to a removed value") }
  }

  private func verifyUseLists() throws(VerificationError) {
    let values = valueIDs
    // The places each value is read, by value index (every index `contains` accepts is below this).
    var expected = [[Use]](repeating: [], count: (values.last?.index ?? -1) + 1)
    for id in nodeIDs {
      let n = self[id]
      for (slot, input) in n.inputs.enumerated() {
        guard let input else { continue }
        guard contains(input) else { throw VerificationError("input \(slot) of \(describe(id)) refers to a removed value") }
        expected[input.index].append(.input(id, slot))
      }
      for v in n.captures {
        guard contains(v) else { throw VerificationError("\(describe(id)) captures a removed value") }
        expected[v.index].append(.capture(id))
      }
    }
    for (i, output) in outputs.enumerated() where contains(output) { expected[output.index].append(.graphOutput(i)) }
    for id in values {
      let actual = self[id].uses
      let want = expected[id.index]
      // Use lists are usually in exactly this order; compare as sets only when they are not.
      guard actual == want || (Set(actual) == Set(want) && actual.count == want.count) else {
        throw VerificationError("use list of '\(self[id].name)' is \(actual), but it is read at \(want)")
      }
    }
  }
}
