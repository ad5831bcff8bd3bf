import Graph

/// One elementwise activation that is monotone non-decreasing, as `stream-slim-fit` keeps after a
/// fitted conv: a clamp (Relu, LeakyRelu with α = 0, Max or Min with a scalar constant, Clip with
/// constant bounds) or a leaky ramp (LeakyRelu with α > 0, a bijection of the reals).
enum MonotoneActivation: Sendable, Equatable {
  /// z clamped into [lower, upper] (nil: unbounded on that side).
  case clamp(lower: Float?, upper: Float?)
  /// z ≥ 0 ? z : α·z, α > 0.
  case leaky(alpha: Float)

  static let relu = MonotoneActivation.clamp(lower: 0, upper: nil)

  /// Reads `node` as a monotone activation of its input `value`; nil for anything else (another
  /// op, a non-scalar or non-constant operand, LeakyRelu with α < 0, Clip with min > max).
  init?(_ node: Node, reading value: ValueID, in graph: Graph) {
    guard OpType.isDefaultDomain(node.domain), node.outputs.count == 1, graph.elementType(of: value) == .float
    else { return nil }
    switch node.opType {
    case OpType.relu:
      guard node.inputs.count == 1, node.input(0) == value else { return nil }
      self = .relu
    case OpType.leakyRelu:
      guard node.inputs.count == 1, node.input(0) == value else { return nil }
      let alpha = node.attribute("alpha")?.float ?? 0.01
      guard alpha.isFinite, alpha >= 0 else { return nil }
      self = alpha == 0 ? .relu : .leaky(alpha: alpha)
    case OpType.max, OpType.min:
      // Max(z, c) / Min(z, c), either order, c one float that broadcasts without changing z's shape.
      guard node.inputs.count == 2, let a = node.input(0), let b = node.input(1), (a == value) != (b == value),
        let c = Self.scalar(a == value ? b : a, broadcastingTo: value, in: graph)
      else { return nil }
      self = node.opType == OpType.max ? .clamp(lower: c, upper: nil) : .clamp(lower: nil, upper: c)
    case OpType.clip:
      guard node.inputs.count >= 1, node.inputs.count <= 3, node.input(0) == value else { return nil }
      var lower: Float?, upper: Float?
      if node.inputs.count > 1 {
        // Opset 11+: optional scalar inputs (an empty name: no bound).
        guard node.attribute("min") == nil, node.attribute("max") == nil else { return nil }
        if let v = node.input(1) {
          guard let c = Self.scalar(v, broadcastingTo: value, in: graph) else { return nil }
          lower = c
        }
        if node.inputs.count > 2, let v = node.input(2) {
          guard let c = Self.scalar(v, broadcastingTo: value, in: graph) else { return nil }
          upper = c
        }
      } else {
        // Opset 6: attributes (absent: ∓FLT_MAX, which clamps nothing finite).
        lower = node.attribute("min")?.float
        upper = node.attribute("max")?.float
        if let l = lower, l.isNaN { return nil }
        if let u = upper, u.isNaN { return nil }
      }
      if let l = lower, let u = upper, l > u { return nil }
      self = .clamp(lower: lower, upper: upper)
    default:
      return nil
    }
  }

  /// The one value of constant `v`: float32, finite, every dimension 1 and no more of them than
  /// `target` has (so that broadcasting leaves `target`'s shape as it is).
  private static func scalar(_ v: ValueID, broadcastingTo target: ValueID, in graph: Graph) -> Float? {
    guard let t = graph.constant(v), t.dtype == .float, t.shape.allSatisfy({ $0 == 1 }),
      let rank = graph.shape(of: target)?.count, t.shape.count <= rank,
      let values = t.floats, values.count == 1, values[0].isFinite
    else { return nil }
    return values[0]
  }

  /// Whether some outputs say only "beyond a bound" about the input (anything but a leaky ramp).
  var clamps: Bool {
    if case .clamp = self { return true }
    return false
  }

  func callAsFunction(_ z: Float) -> Float {
    switch self {
    case .clamp(let lower, let upper):
      var y = z
      if let lower, y < lower { y = lower }
      if let upper, y > upper { y = upper }
      return y
    case .leaky(let alpha):
      return z >= 0 ? z : alpha * z
    }
  }

  /// inf{z : f(z) ≥ a}: −∞ when every z reaches a (a at or below the lower clamp).
  func lowerPreimage(_ a: Float) -> Float {
    switch self {
    case .clamp(let lower, let upper):
      var v = a
      if let upper, v > upper { v = upper }
      if let lower, v <= lower { return -.infinity }
      return v
    case .leaky(let alpha):
      return a >= 0 ? a : a / alpha
    }
  }

  /// sup{z : f(z) ≤ b}: +∞ when every z stays within b (b at or above the upper clamp).
  func upperPreimage(_ b: Float) -> Float {
    switch self {
    case .clamp(let lower, let upper):
      var v = b
      if let lower, v < lower { v = lower }
      if let upper, v >= upper { return .infinity }
      return v
    case .leaky(let alpha):
      return b >= 0 ? b : b / alpha
    }
  }

  /// "Relu", "Max(·, -0.4)", "LeakyRelu(0.2)".
  var summary: String {
    switch self {
    case .clamp(0?, nil): return "Relu"
    case .clamp(let l?, nil): return "Max(·, \(l))"
    case .clamp(nil, let u?): return "Min(·, \(u))"
    case .clamp(let l, let u): return "Clip(\(l.map { "\($0)" } ?? "−∞"), \(u.map { "\($0)" } ?? "∞"))"
    case .leaky(let alpha): return "LeakyRelu(\(alpha))"
    }
  }
}

/// The activations a fitted conv keeps after it, in order: f = fₙ ∘ … ∘ f₁, monotone
/// non-decreasing, so MaxPool(f(c)) = f(MaxPool(c)).
struct MonotoneChain: Sendable, Equatable {
  var steps: [MonotoneActivation]

  static let none = MonotoneChain(steps: [])
  static let relu = MonotoneChain(steps: [.relu])

  var isEmpty: Bool { steps.isEmpty }
  /// Whether the fit needs clamp-aware rounds (some step loses information).
  var clamps: Bool { steps.contains { $0.clamps } }

  func callAsFunction(_ z: Float) -> Float {
    var y = z
    for f in steps { y = f(y) }
    return y
  }

  /// The pre-activation target for post-activation target `y` given the current prediction `p`:
  /// the point of f⁻¹(y) nearest p. f⁻¹(y) is an interval (a point where f is invertible, a
  /// half-line where y is a clamp value); a `y` outside f's range is first moved to the nearest
  /// value f reaches. Through a lone Relu this is ReLU-aware fitting's rule: y > 0 stays, y ≤ 0
  /// becomes min(p, 0).
  func target(_ y: Float, prediction p: Float) -> Float {
    var lo = y, hi = y
    for f in steps.reversed() {
      lo = f.lowerPreimage(lo)
      hi = f.upperPreimage(hi)
    }
    if lo == hi { return lo }
    if p < lo { return lo }
    if p > hi { return hi }
    return p
  }
}
