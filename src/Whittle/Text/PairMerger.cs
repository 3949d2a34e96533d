namespace Whittle.Text;

/// <summary>
/// Greedy pair merging, the core of BPE encoding: repeatedly merge the adjacent pair of highest priority (ties: the
/// leftmost) until no pair merges. A priority queue with stale-entry checks makes this O(n log n) and picks the
/// same pairs as the quadratic rescan of reference implementations.
/// </summary>
internal static class PairMerger
{
    /// <summary>The merged sequence.</summary>
    /// <param name="tokens">The initial tokens.</param>
    /// <param name="merge">For adjacent (left, right), the merged token and its priority (higher merges first), or null.</param>
    public static int[] Merge(IReadOnlyList<int> tokens, Func<int, int, (int Merged, double Priority)?> merge)
    {
        int count = tokens.Count;
        var id = tokens.ToArray();
        var next = new int[count];
        var prev = new int[count];
        for (int i = 0; i < count; i++)
        {
            next[i] = i + 1 < count ? i + 1 : -1;
            prev[i] = i - 1;
        }
        // The node index keeps the tokens' order through merges, so it breaks ties towards the left.
        var queue = new PriorityQueue<(int Left, int LeftId, int RightId, int Merged), (double Priority, int Left)>(
            Comparer<(double Priority, int Left)>.Create((a, b) => a.Priority != b.Priority ? b.Priority.CompareTo(a.Priority) : a.Left.CompareTo(b.Left)));
        void Offer(int left)
        {
            int right = left < 0 ? -1 : next[left];
            if (right < 0) return;
            if (merge(id[left], id[right]) is { } m) queue.Enqueue((left, id[left], id[right], m.Merged), (m.Priority, left));
        }
        for (int i = 0; i + 1 < count; i++) Offer(i);
        var alive = new bool[count];
        Array.Fill(alive, true);
        while (queue.TryDequeue(out var e, out _))
        {
            int right = next[e.Left];
            if (!alive[e.Left] || right < 0 || id[e.Left] != e.LeftId || id[right] != e.RightId) continue; // stale entry
            id[e.Left] = e.Merged;
            alive[right] = false;
            next[e.Left] = next[right];
            if (next[right] >= 0) prev[next[right]] = e.Left;
            Offer(prev[e.Left]);
            Offer(e.Left);
        }
        var result = new List<int>(count);
        for (int i = count == 0 ? -1 : 0; i >= 0; i = next[i]) result.Add(id[i]);
        return [.. result];
    }
}
