/** Where `id` is or would go among `rows` in id order. */
export function idPosition(rows: readonly { id: number }[], id: number): number {
  let low = 0;
  let high = rows.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (rows[middle].id < id) low = middle + 1;
    else high = middle;
  }
  return low;
}
