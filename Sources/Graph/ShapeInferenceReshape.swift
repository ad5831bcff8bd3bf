/// Shape inference for operators that rearrange a tensor's dimensions without looking at its
/// elements: Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Expand, Tile, DepthToSpace.
extension ShapeInference {
  static let reshapeRules: [String: Rule] = [
    OpType.reshape: { $0.reshape($1) },
    OpType.flatten: { $0.flatten($1) },
    OpType.squeeze: { $0.squeeze($1) },
    OpType.unsqueeze: { $0.unsqueeze($1) },
    OpType.transpose: { $0.transpose($1) },
    OpType.expand: { $0.expand($1) },
    OpType.tile: { $0.tile($1) },
    OpType.depthToSpace: { $0.depthToSpace($1, inverse: false) },
    OpType.spaceToDepth: { $0.depthToSpace($1, inverse: true) },
  ]

  /// `count` unknown dims when the rank is the static length of the 1-D value `v`.
  func unknownDims(lengthOf v: ValueID?) -> [Dim]? {
    guard let s = shape(v), s.count == 1, let n = s[0].value, n <= 64 else { return nil }
    return Array(repeating: .unknown, count: n)
  }

  /// Reshape to a constant or computed shape: 0 copies the input's dim (unless `allowzero`),
  /// -1 takes what is left.
  mutating func reshape(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0))
    let x = shape(node.input(0))
    guard let target = elements(node.input(1)) else { return [tensor(dtype, unknownDims(lengthOf: node.input(1)))] }
    let allowZero = (int(node, "allowzero") ?? 0) != 0
    var out: [Dim] = []
    var inferred: Int?
    for (i, d) in target.enumerated() {
      switch d {
      case .value(0) where !allowZero:
        if let x, i >= x.count { report("shape entry \(i) copies a dimension the input does not have") }
        out.append(x.flatMap { i < $0.count ? $0[i] : nil } ?? .unknown)
      case .value(-1):
        guard inferred == nil else {
          report("shape has more than one -1")
          return [tensor(dtype, nil)]
        }
        inferred = i
        out.append(.unknown)
      case .value(let k) where k < -1 || k > Self.maxDim:
        report("shape entry \(k) is invalid")
        return [tensor(dtype, nil)]
      default: out.append(d)
      }
    }
    if let i = inferred, let x {
      var others = out
      others.remove(at: i)
      out[i] = remainingExtent(of: x, after: others)
    } else if let x, inferred == nil { checkElementCount(x, out) }
    return [tensor(dtype, out)]
  }

  /// The extent that makes `others` hold as many elements as `input`: a known number, or a symbol
  /// of `input` that `others` does not account for.
  mutating func remainingExtent(of input: [Dim], after others: [Dim]) -> Dim {
    guard let (inKnown, inSymbols) = factors(input), let (outKnown, outSymbols) = factors(others), outKnown > 0 else {
      return .unknown
    }
    var left = inSymbols
    for s in outSymbols {
      guard let i = left.firstIndex(of: s) else { return .unknown }
      left.remove(at: i)
    }
    guard inKnown % outKnown == 0 else {
      report("cannot reshape \(input.count)-D input of \(inKnown) elements into a multiple of \(outKnown)")
      return .unknown
    }
    let quotient = inKnown / outKnown
    if left.isEmpty { return .value(quotient) }
    return left.count == 1 && quotient == 1 ? .param(left[0]) : .unknown
  }

  /// The product of the known extents and the list of symbols; nil if a dim is unknown.
  func factors(_ dims: [Dim]) -> (Int, [String])? {
    var known = 1
    var symbols: [String] = []
    for d in dims {
      switch d {
      case .value(let k):
        let (p, overflow) = known.multipliedReportingOverflow(by: k)
        if overflow { return nil }
        known = p
      case .param(let p): symbols.append(p)
      case .unknown: return nil
      }
    }
    return (known, symbols)
  }

  mutating func checkElementCount(_ input: [Dim], _ output: [Dim]) {
    guard case .value(let a) = DimArithmetic.product(input), case .value(let b) = DimArithmetic.product(output), a != b
    else { return }
    report("cannot reshape \(a) elements into \(b)")
  }

  /// [d0·…·d(axis−1), d(axis)·…·d(r−1)].
  mutating func flatten(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0))
    guard let x = shape(node.input(0)) else { return [tensor(dtype, [.unknown, .unknown])] }
    let axis = int(node, "axis") ?? 1
    let a = axis < 0 ? axis + x.count : axis
    guard a >= 0 && a <= x.count else {
      report("axis \(axis) is out of range for rank \(x.count)")
      return [tensor(dtype, [.unknown, .unknown])]
    }
    return [tensor(dtype, [DimArithmetic.product(x[..<a]), DimArithmetic.product(x[a...])])]
  }

  /// An integer list that is an attribute in older opsets and an optional input in newer ones.
  enum IntsOperand {
    case absent
    /// An input that is not a constant.
    case unknown
    case known([Int])
  }

  /// Attribute `attribute` before opset `version`, input `slot` from it.
  func intsOperand(_ node: Node, _ attribute: String, inputFrom version: Int64, slot: Int) -> IntsOperand {
    if opset < version { return ints(node, attribute).map(IntsOperand.known) ?? .absent }
    return inputOperand(node, slot)
  }

  /// Optional integer input `slot`.
  func inputOperand(_ node: Node, _ slot: Int) -> IntsOperand {
    guard has(node, slot) else { return .absent }
    return ints(node.input(slot)).map(IntsOperand.known) ?? .unknown
  }

  mutating func squeeze(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0))
    guard let x = shape(node.input(0)) else { return [tensor(dtype, nil)] }
    switch intsOperand(node, "axes", inputFrom: 13, slot: 1) {
    case .unknown: return [tensor(dtype, nil)]
    case .absent:
      // Every dim of extent 1 goes; only known when every dim is known.
      guard x.allSatisfy({ $0.value != nil }) else { return [tensor(dtype, nil)] }
      return [tensor(dtype, x.filter { $0 != .value(1) })]
    case .known(let axes):
      guard let normalized = normalize(axes: axes, rank: x.count) else { return [tensor(dtype, nil)] }
      for a in normalized {
        if let k = x[a].value, k != 1 { report("cannot squeeze axis \(a) of extent \(k)") }
      }
      return [tensor(dtype, x.indices.filter { !normalized.contains($0) }.map { x[$0] })]
    }
  }

  mutating func unsqueeze(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0))
    guard let x = shape(node.input(0)) else { return [tensor(dtype, nil)] }
    let axes: [Int]
    switch intsOperand(node, "axes", inputFrom: 13, slot: 1) {
    case .unknown: return [tensor(dtype, nil)]
    case .absent:
      report("axes are missing")
      return [tensor(dtype, nil)]
    case .known(let found): axes = found
    }
    let rank = x.count + axes.count
    guard let normalized = normalize(axes: axes, rank: rank) else { return [tensor(dtype, nil)] }
    var rest = x.makeIterator()
    let out = (0..<rank).map { normalized.contains($0) ? Dim.value(1) : rest.next() ?? .unknown }
    return [tensor(dtype, out)]
  }

  mutating func transpose(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0))
    let perm = ints(node, "perm")
    guard let x = shape(node.input(0)) ?? perm.map({ Array(repeating: Dim.unknown, count: $0.count) }) else {
      return [tensor(dtype, nil)]
    }
    let order = perm ?? Array(x.indices.reversed())
    guard order.count == x.count, Set(order) == Set(x.indices) else {
      report("perm \(order) is not a permutation of 0..<\(x.count)")
      return [tensor(dtype, nil)]
    }
    return [tensor(dtype, order.map { x[$0] })]
  }

  /// Broadcast of the input with the requested shape.
  mutating func expand(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0))
    guard let x = shape(node.input(0)), var target = elements(node.input(1)) ?? unknownDims(lengthOf: node.input(1)) else {
      return [tensor(dtype, nil)]
    }
    target = target.map { $0.value.map { $0 < 0 || $0 > Self.maxDim } == true ? .unknown : $0 }
    return [tensor(dtype, broadcast([x, target]))]
  }

  mutating func tile(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0))
    guard let x = shape(node.input(0)) else { return [tensor(dtype, unknownDims(lengthOf: node.input(1)))] }
    guard let repeats = elements(node.input(1)) else { return [tensor(dtype, x.map { _ in .unknown })] }
    guard repeats.count == x.count, repeats.allSatisfy({ ($0.value ?? 0) >= 0 && ($0.value ?? 0) <= Self.maxDim }) else {
      report("repeats has \(repeats.count) entries for rank \(x.count), or a negative one")
      return [tensor(dtype, x.map { _ in .unknown })]
    }
    return [tensor(dtype, zip(x, repeats).map { DimArithmetic.product([$0, $1]) })]
  }

  /// DepthToSpace [N, C, H, W] → [N, C/b², H·b, W·b]; SpaceToDepth the inverse.
  mutating func depthToSpace(_ node: Node, inverse: Bool) -> [ValueType?] {
    let dtype = dtype(node.input(0))
    guard let x = shape(node.input(0)), x.count == 4 else { return [tensor(dtype, nil)] }
    guard let b = int(node, "blocksize"), b >= 1, b <= Self.maxAttribute else {
      report("attribute 'blocksize' is missing or not positive")
      return [tensor(dtype, x.map { _ in .unknown })]
    }
    typealias D = DimArithmetic
    if inverse {
      return [tensor(dtype, [x[0], D.multiply(x[1], by: b * b), D.divide(x[2], by: b), D.divide(x[3], by: b)])]
    }
    return [tensor(dtype, [x[0], D.divide(x[1], by: b * b), D.multiply(x[2], by: b), D.multiply(x[3], by: b)])]
  }
}
