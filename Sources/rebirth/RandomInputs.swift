import Foundation
import Graph
import Runtime

/// Seeded random inputs for a model, from its declared input types: what `verify` and `bench` feed
/// when no inputs are given. The rules follow the conformance suite's `Tests/conformance/inputs.py`
/// (the values themselves differ: this is not NumPy's generator).
///
/// Shapes: a known dim is used as is; a symbolic dim takes its `--dim` size, else 1; an unknown
/// dim is 1; an input of unknown rank is `[1]`.
///
/// Values: float types standard normal; bool true or false with equal odds; integers by use:
///   1. an input named `sr` or `sample_rate` (any case) is a sample rate: 16000;
///   2. the indices of Gather or GatherElements: uniform in [0, n), n the data's size on the axis,
///      when known (from an initializer, an input's chosen shape, or shape inference);
///   3. the sequence_lens of RNN, GRU or LSTM: the full sequence length of X;
///   4. otherwise uniform in [0, 4].
/// Each input has its own generator, seeded from the seed and its name, so that adding an input
/// to a model does not change the others.
struct RandomInputs {
  static let sampleRate = 16000
  static let smallIntegerLimit = 4

  let model: Model
  let dims: [String: Int]
  let seed: UInt64

  /// A value for every required input, with the chosen shapes.
  func make() throws(CLIError) -> [String: NDArray] {
    let required = declaredInputs(of: model).filter(\.required)
    var shapes: [String: (DType, [Int])] = [:]
    var usedDims: Set<String> = []
    for input in required {
      guard case .tensor(let dtype, let declared)? = input.type else {
        throw .badModel(
          "input '\(input.name)' is \(input.typeText): only tensor inputs can be made up; give it with --inputs")
      }
      guard let declared else {
        shapes[input.name] = (dtype, [1])
        continue
      }
      shapes[input.name] = (
        dtype,
        declared.map { dim in
          switch dim {
          case .value(let v) where v >= 0: return v
          case .param(let p):
            usedDims.insert(p)
            return dims[p] ?? 1
          default: return 1
          }
        }
      )
    }
    if let unknown = dims.keys.sorted().first(where: { !usedDims.contains($0) }) {
      let known = usedDims.sorted()
      throw .usage(
        "--dim \(unknown): no input has a symbolic dim '\(unknown)'"
          + (known.isEmpty ? " (the inputs have none)" : " (symbolic dims: \(known.joined(separator: ", ")))"))
    }
    var bounds = IntegerBounds(model: model, shapes: shapes.mapValues(\.1))
    var feeds: [String: NDArray] = [:]
    for input in required {
      let (dtype, shape) = shapes[input.name]!
      guard NDArray.canAllocate(dtype, shape: shape) else {
        throw .badModel("input '\(input.name)': cannot make an array of \(dtype)\(shapeText(shape))")
      }
      var rng = SplitMix64(seed: seed, name: input.name)
      let count = checkedElementCount(shape) ?? 0
      switch dtype {
      case .float: feeds[input.name] = NDArray((0..<count).map { _ in Float(rng.normal()) }, shape: shape)
      case .double: feeds[input.name] = NDArray((0..<count).map { _ in rng.normal() }, shape: shape)
      case .float16: feeds[input.name] = NDArray((0..<count).map { _ in Half(Float(rng.normal())) }, shape: shape)
      case .bool: feeds[input.name] = NDArray((0..<count).map { _ in rng.next() >> 63 == 1 }, shape: shape)
      case .int8, .int16, .int32, .int64, .uint8, .uint16, .uint32, .uint64:
        let values = integers(for: input.name, count: count, rng: &rng, bounds: &bounds)
        feeds[input.name] = integerArray(values, dtype: dtype, shape: shape)
      default:
        throw .badModel("input '\(input.name)': no random values for element type \(dtype); give it with --inputs")
      }
    }
    return feeds
  }

  private func integers(for name: String, count: Int, rng: inout SplitMix64, bounds: inout IntegerBounds) -> [Int64] {
    if ["sr", "sample_rate"].contains(name.lowercased()) {  // rule 1
      return [Int64](repeating: Int64(Self.sampleRate), count: count)
    }
    if let length = bounds.sequenceLength(name) {  // rule 3
      return [Int64](repeating: Int64(length), count: count)
    }
    let limit = bounds.indexLimit(name) ?? (Self.smallIntegerLimit + 1)  // rules 2 and 4
    return (0..<count).map { _ in Int64(rng.next() % UInt64(limit)) }
  }

  private func integerArray(_ values: [Int64], dtype: DType, shape: [Int]) -> NDArray {
    switch dtype {
    case .int8: return NDArray(values.map { Int8(truncatingIfNeeded: $0) }, shape: shape)
    case .int16: return NDArray(values.map { Int16(truncatingIfNeeded: $0) }, shape: shape)
    case .int32: return NDArray(values.map { Int32(truncatingIfNeeded: $0) }, shape: shape)
    case .uint8: return NDArray(values.map { UInt8(truncatingIfNeeded: $0) }, shape: shape)
    case .uint16: return NDArray(values.map { UInt16(truncatingIfNeeded: $0) }, shape: shape)
    case .uint32: return NDArray(values.map { UInt32(truncatingIfNeeded: $0) }, shape: shape)
    case .uint64: return NDArray(values.map { UInt64(truncatingIfNeeded: $0) }, shape: shape)
    default: return NDArray(values, shape: shape)
    }
  }
}

/// The uses of integer inputs that bound their values (rules 2 and 3 of `RandomInputs`).
private struct IntegerBounds {
  let model: Model
  let shapes: [String: [Int]]
  /// Every node reading each input by name, in the main graph and in subgraphs, with the
  /// input position and the graph the node is in.
  private var uses: [String: [(node: Node, position: Int, graph: Graph)]] = [:]
  private var inferred: Graph?

  init(model: Model, shapes: [String: [Int]]) {
    self.model = model
    self.shapes = shapes
    func visit(_ g: Graph) {
      for id in g.nodeIDs {
        let node = g[id]
        for (position, input) in node.inputs.enumerated() {
          guard let input, shapes[g[input].name] != nil else { continue }
          uses[g[input].name, default: []].append((node, position, g))
        }
        for attribute in node.attributes { for sub in attribute.subgraphs { visit(sub) } }
      }
    }
    visit(model.graph)
  }

  private static func isDefaultDomain(_ node: Node) -> Bool { node.domain.isEmpty || node.domain == "ai.onnx" }

  mutating func indexLimit(_ name: String) -> Int? {
    var limits: [Int] = []
    for use in uses[name] ?? [] where Self.isDefaultDomain(use.node) && use.position == 1 {
      guard ["Gather", "GatherElements"].contains(use.node.opType), let data = use.node.inputs.first ?? nil,
        let shape = shape(of: data, in: use.graph)
      else { continue }
      var axis = Int(use.node.attribute("axis")?.int ?? 0)
      if axis < 0 { axis += shape.count }
      if axis >= 0 && axis < shape.count, let size = shape[axis], size > 0 { limits.append(size) }
    }
    return limits.min()
  }

  mutating func sequenceLength(_ name: String) -> Int? {
    var lengths: [Int] = []
    for use in uses[name] ?? [] where Self.isDefaultDomain(use.node) && use.position == 4 {
      guard ["RNN", "GRU", "LSTM"].contains(use.node.opType), let x = use.node.inputs.first ?? nil,
        let shape = shape(of: x, in: use.graph), shape.count == 3
      else { continue }
      let axis = use.node.attribute("layout")?.int == 1 ? 1 : 0
      if let length = shape[axis] { lengths.append(length) }
    }
    return lengths.min()
  }

  /// The shape of a value, as far as it is known.
  private mutating func shape(of value: ValueID, in g: Graph) -> [Int?]? {
    let name = g[value].name
    if let chosen = shapes[name] { return chosen }
    if let constant = g.constant(value) { return constant.shape }
    if let dims = g[value].type?.tensorShape, dims.allSatisfy({ $0.value != nil }) { return dims.map(\.value) }
    let main = inferredGraph()
    guard let id = main.value(named: name), let dims = main[id].type?.tensorShape else { return nil }
    return dims.map { $0.value.flatMap { $0 > 0 ? $0 : nil } }
  }

  /// The main graph after shape inference, with the inputs at their chosen shapes.
  private mutating func inferredGraph() -> Graph {
    if let inferred { return inferred }
    var copy = model
    for id in copy.graph.inputs {
      let name = copy.graph[id].name
      guard let shape = shapes[name], case .tensor(let dtype, _)? = copy.graph[id].type else { continue }
      copy.graph.updateValue(id) { $0.type = .tensor(dtype, shape: shape.map { .value($0) }) }
    }
    copy.inferShapes()
    inferred = copy.graph
    return copy.graph
  }
}

extension SplitMix64 {
  /// Seeded from a seed and a name (FNV-1a).
  init(seed: UInt64, name: String) {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in name.utf8 {
      hash ^= UInt64(byte)
      hash = hash &* 0x100_0000_01B3
    }
    self.init(seed: seed &* 0x9E37_79B9_7F4A_7C15 ^ hash)
  }

  /// Uniform in (0, 1].
  mutating func uniform() -> Double { Double((next() >> 11) + 1) / Double(1 << 53) }

  /// Standard normal (Box-Muller).
  mutating func normal() -> Double { (-2 * log(uniform())).squareRoot() * cos(2 * Double.pi * uniform()) }
}
