extension Graph {
  /// The nodes in a deterministic topological order: among the nodes ready at each step, the one
  /// with the lowest ID comes first, so an imported graph keeps its file order. Nil when the
  /// graph has a cycle.
  public func topologicalOrder() -> [NodeID]? {
    let ids = nodeIDs
    var pending: [NodeID: Int] = [:]
    pending.reserveCapacity(ids.count)
    var ready = MinHeap()
    for id in ids {
      let count = dependencies(of: id).count
      pending[id] = count
      if count == 0 { ready.push(id) }
    }
    var order: [NodeID] = []
    order.reserveCapacity(ids.count)
    while let id = ready.pop() {
      order.append(id)
      for consumer in consumers(of: id) {
        let left = pending[consumer, default: 0] - 1
        pending[consumer] = left
        if left == 0 { ready.push(consumer) }
      }
    }
    return order.count == ids.count ? order : nil
  }

  /// Nodes that must run before `node`, each once.
  public func dependencies(of node: NodeID) -> Set<NodeID> {
    var result = Set<NodeID>()
    let n = self[node]
    for v in n.inputs.compactMap({ $0 }) + n.captures {
      if let p = self[v].producer { result.insert(p) }
    }
    return result
  }

  /// Nodes that read an output of `node`, each once.
  public func consumers(of node: NodeID) -> Set<NodeID> {
    var result = Set<NodeID>()
    for output in self[node].outputs.compactMap({ $0 }) {
      for use in self[output].uses {
        switch use {
        case .input(let n, _), .capture(let n): result.insert(n)
        case .graphOutput: break
        }
      }
    }
    return result
  }

  /// The nodes on some cycle, for error messages; empty when the graph is acyclic.
  public func nodesOnCycles() -> [NodeID] {
    guard topologicalOrder() == nil else { return [] }
    // Repeatedly strip nodes with no remaining dependencies or no remaining consumers.
    var alive = Set(nodeIDs)
    var changed = true
    while changed {
      changed = false
      for id in alive.sorted() {
        if dependencies(of: id).isDisjoint(with: alive) || consumers(of: id).isDisjoint(with: alive) {
          alive.remove(id)
          changed = true
        }
      }
    }
    return alive.sorted()
  }
}

/// A binary min-heap of node IDs.
private struct MinHeap {
  private var items: [NodeID] = []

  mutating func push(_ id: NodeID) {
    items.append(id)
    var i = items.count - 1
    while i > 0 {
      let parent = (i - 1) / 2
      guard items[i] < items[parent] else { break }
      items.swapAt(i, parent)
      i = parent
    }
  }

  mutating func pop() -> NodeID? {
    guard let first = items.first else { return nil }
    let last = items.removeLast()
    if !items.isEmpty {
      items[0] = last
      var i = 0
      while true {
        let l = 2 * i + 1, r = l + 1
        var smallest = i
        if l < items.count, items[l] < items[smallest] { smallest = l }
        if r < items.count, items[r] < items[smallest] { smallest = r }
        if smallest == i { break }
        items.swapAt(i, smallest)
        i = smallest
      }
    }
    return first
  }
}
