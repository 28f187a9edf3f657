/**
 * The carrier's rate sheet the CSV benches upload (issue 21: 150k rows): quoted names with a comma, two
 * billing increments, a per-call row in a hundred, one effective date.
 */
export function rateSheetCsv(rows: number): string {
  const lines = ['prefix,destination_name,rate,billing_increment,rate_type,effective_at'];
  for (let i = 0; i < rows; i++)
    lines.push(
      `${1000000 + i},"Destination ${i % 5000}, Mobile",0.${String(100 + (i % 9000)).padStart(4, '0')},${i % 3 === 0 ? '60/60' : '6/6'},${i % 100 === 0 ? 'per_call' : 'per_minute'},2026-01-01`,
    );
  return lines.join('\n');
}
