import Graph

/// Questions patterns ask of a graph while matching.
extension Graph {
  /// Whether `value` has exactly one reader and is not a graph output, so a pattern may fold its
  /// producer away.
  public func hasSingleUse(_ value: ValueID) -> Bool {
    let uses = self[value].uses
    guard uses.count == 1, case .input = uses[0] else { return false }
    return true
  }

  /// The node reading `value`, when it is its only use (and not a graph output).
  public func soleConsumer(of value: ValueID) -> Node? {
    guard hasSingleUse(value), case .input(let node, _) = self[value].uses[0] else { return nil }
    return self[node]
  }

  /// Whether `output` can be replaced by `input` everywhere without adding a node: always, unless
  /// `output` is a graph output, whose name must survive; then only when `input` is a node output
  /// that is no graph output itself and can take the name.
  public func canForward(_ output: ValueID, to input: ValueID) -> Bool {
    guard output != input else { return false }
    let outputPositions = self[output].uses.filter { if case .graphOutput = $0 { return true } else { return false } }
    if outputPositions.isEmpty { return true }
    return outputPositions.count == 1 && self[input].producer != nil && !isGraphOutput(input)
  }

  /// The shape recorded for `value`, when ranked.
  public func shape(of value: ValueID?) -> [Dim]? {
    guard let value else { return nil }
    return self[value].type?.tensorShape
  }

  /// The element type recorded for `value`.
  public func elementType(of value: ValueID?) -> DType? {
    guard let value else { return nil }
    if let t = constant(value) { return t.dtype }
    return self[value].type?.tensorElementType
  }

  /// Whether two values surely have the same shape: both ranked, every dim known or named alike.
  public func haveSameShape(_ a: ValueID?, _ b: ValueID?) -> Bool {
    guard let sa = shape(of: a), let sb = shape(of: b), sa.count == sb.count else { return false }
    return zip(sa, sb).allSatisfy { x, y in
      switch (x, y) {
      case (.value(let p), .value(let q)): return p == q
      case (.param(let p), .param(let q)): return p == q
      default: return false
      }
    }
  }

  /// The integer elements of a constant int32/int64 `value`.
  public func constantInts(_ value: ValueID?) -> [Int64]? { constant(value)?.int64s }

  /// Whether constant `value` holds `x` in every element (and at least one element).
  public func isConstant(_ value: ValueID?, everywhere x: Double) -> Bool {
    guard let values = constant(value)?.doubles, !values.isEmpty else { return false }
    return values.allSatisfy { $0 == x }
  }

  /// An integer attribute of `node`, or `fallback` when absent.
  public func int(_ name: String, of node: Node, default fallback: Int64) -> Int64 {
    node.attribute(name)?.int ?? fallback
  }
}
