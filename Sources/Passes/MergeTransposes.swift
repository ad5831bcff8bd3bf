import Graph

/// Merges a Transpose of a Transpose into one Transpose, or into nothing.
///
///     t = Transpose<perm = p1>(x); y = Transpose<perm = p2>(t)
///     → y = Transpose<perm = q>(x)      where q[i] = p1[p2[i]]
///     → y = x                           when q is the identity (0, 1, …, r − 1)
///
/// The algebra: ONNX's Transpose gives output axis i the input axis perm[i], so t's axis j is x's
/// axis p1[j], and y's axis i is t's axis p2[i], which is x's axis p1[p2[i]]. A missing perm
/// reverses the axes (perm[i] = r − 1 − i); its rank r is the length of the other perm, and when
/// both are missing the two reversals cancel whatever the rank, so no shape is ever needed.
///
/// Conditions, and what happens when they fail:
/// - both are Transposes of the default domain with valid permutations of the same rank;
/// - composed to the identity: y is forwarded to x when `canForward` allows it (y is no graph
///   output, or x is a node output that can take y's name); otherwise y becomes `Identity(x)`,
///   which still saves the transpose. t stays when something else reads it (a second use or a
///   graph output) and goes with the dead code otherwise;
/// - composed to another permutation: y is rewritten to read x with perm q only when t has no
///   other use and is no graph output, so t dies and one Transpose remains. When t must stay, the
///   rewrite would remove no node and save no work (still two transposes), so the pair is left as
///   written.
public struct MergeTransposes: Pass {
  public static let name = "merge-transposes"
  public static let summary = "Merge Transpose pairs into one Transpose with the composed perm, or none"
  public static let isExact = true
  public static let isDefault = true

  public init(options: PassOptions) {}

  public func run(_ rewriter: inout Rewriter) throws {
    rewriter.applyGreedily([TransposeOfTranspose()])
  }
}

/// `Transpose(Transpose(x, p1), p2)`; see ``MergeTransposes``.
struct TransposeOfTranspose: RewritePattern {
  static let name = "transpose-transpose"
  static let rootOpTypes: Set<String>? = [OpType.transpose]

  struct Match {
    let inner: Node
    let outer: Node
    let source: ValueID
    /// The composed permutation; nil for two reversals, the identity of any rank.
    let perm: [Int64]?
    var isIdentity: Bool { perm.map { $0 == (0..<Int64($0.count)).map { $0 } } ?? true }
  }

  func match(_ outer: Node, in graph: Graph) -> Match? {
    guard let t = outer.input(0), outer.output(0) != nil, outer.outputs.count == 1,
      let inner = graph.producer(of: t), inner.opType == OpType.transpose, OpType.isDefaultDomain(inner.domain),
      inner.outputs.count == 1, let x = inner.input(0),
      let p1 = permAttribute(of: inner), let p2 = permAttribute(of: outer)
    else { return nil }
    let perm: [Int64]?
    switch (p1, p2) {
    case (.reversed, .reversed): perm = nil
    case (.given(let a), .reversed): perm = compose(a, reversal(a.count))
    case (.reversed, .given(let b)): perm = compose(reversal(b.count), b)
    case (.given(let a), .given(let b)): perm = compose(a, b)
    }
    if perm == nil, case .given = p1 { return nil }  // not permutations of one rank
    if perm == nil, case .given = p2 { return nil }
    let m = Match(inner: inner, outer: outer, source: x, perm: perm)
    // Not the identity: worth it only when the inner Transpose dies.
    if !m.isIdentity && !graph.hasSingleUse(t) { return nil }
    return m
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter) throws -> String {
    let inner = rewriter.graph.label(m.inner), outer = rewriter.graph.label(m.outer)
    let y = m.outer.output(0)!
    if m.isIdentity {
      if rewriter.graph.canForward(y, to: m.source) {
        rewriter.replaceAllUses(of: y, with: m.source)
        rewriter.erase(m.outer.id)
        return "\(outer) undoes \(inner): removed"
      }
      // y must keep its name and x cannot take it: a copy is the least that remains.
      rewriter.setInput(0, of: m.outer.id, to: m.source)
      rewriter.setOpType(OpType.identity, of: m.outer.id)
      try rewriter.removeAttribute("perm", of: m.outer.id)
      return "\(outer) undoes \(inner): became an Identity of '\(rewriter.graph[m.source].name)'"
    }
    rewriter.setInput(0, of: m.outer.id, to: m.source)
    try rewriter.setAttribute(Attribute("perm", .ints(m.perm!)), of: m.outer.id)
    return "\(inner) merged into \(outer): perm \(m.perm!)"
  }

  /// The perm of Transpose(Transpose(x, p1), p2), or nil when the two are not permutations of one
  /// rank.
  private func compose(_ p1: [Int64], _ p2: [Int64]) -> [Int64]? {
    guard p1.count == p2.count, isPermutation(p1), isPermutation(p2) else { return nil }
    return p2.map { p1[Int($0)] }
  }

  private enum Perm {
    case given([Int64])
    /// No perm attribute: the axes reversed.
    case reversed
  }

  /// The perm attribute of `node`; nil when it is not a list of ints.
  private func permAttribute(of node: Node) -> Perm? {
    guard let attribute = node.attribute("perm") else { return .reversed }
    return attribute.ints.map { .given($0) }
  }

  private func isPermutation(_ p: [Int64]) -> Bool {
    p.sorted() == (0..<Int64(p.count)).map { $0 }
  }

  private func reversal(_ rank: Int) -> [Int64] {
    (0..<Int64(rank)).reversed().map { $0 }
  }
}
