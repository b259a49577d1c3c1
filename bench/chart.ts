/**
 * The README's chart, drawn as SVG text (no browser, no chart library): one panel per
 * throughput measurement, a bar per peer on a log scale (rates span three orders of magnitude),
 * and a latency panel with p50 bars and p99 marks.
 */
import type { Figure, System } from './harness.js';

const COLORS: Record<System, string> = {
  ours: '#d1495b',
  celery: '#2e7d32',
  'celery-node': '#ef8a17',
  bullmq: '#5c6bc0',
  floor: '#8a8a8a',
};

const NAMES: Record<System, string> = {
  ours: 'ours',
  celery: 'Celery 5.2',
  'celery-node': 'celery-node',
  bullmq: 'BullMQ',
  floor: 'raw client (floor)',
};

const TITLE = 'serverless-celery vs its peers: no-op tasks, one process each';
const WIDTH = 900;
const LABEL = 350;
const BAR = 14;
const GAP = 4;
const PLOT = WIDTH - LABEL - 100;

function escapeXml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

function format(value: number, unit: string): string {
  if (unit === 'msg/s') {
    return value >= 1000 ? `${(value / 1000).toFixed(value >= 10_000 ? 0 : 1)} k/s` : `${value}/s`;
  }
  return `${value} ${unit}`;
}

interface Panel {
  readonly title: string;
  readonly figures: readonly Figure[];
  readonly scale: 'log' | 'linear';
}

function panel({ title, figures, scale }: Panel, top: number): [string, number] {
  const parts: string[] = [];
  parts.push(
    `<text x="8" y="${top + 16}" font-weight="bold" font-size="14">${escapeXml(title)}</text>`,
  );
  let y = top + 28;
  const values = figures.flatMap((figure) => [figure.value, figure.p99 ?? figure.value]);
  const max = Math.max(...values);
  const min = scale === 'log' ? 10 ** Math.floor(Math.log10(Math.max(1, Math.min(...values)))) : 0;
  const top10 = scale === 'log' ? 10 ** Math.ceil(Math.log10(max)) : max * 1.1;
  const x = (value: number) =>
    scale === 'log'
      ? (PLOT * Math.log10(Math.max(value, min) / min)) / Math.log10(top10 / min)
      : (PLOT * value) / top10;
  // Grid lines at powers of ten (log) or at fifths (linear).
  const ticks =
    scale === 'log'
      ? Array.from({ length: Math.round(Math.log10(top10 / min)) + 1 }, (_, i) => min * 10 ** i)
      : Array.from({ length: 6 }, (_, i) => (top10 * i) / 5);
  const height = figures.length * (BAR + GAP);
  for (const tick of ticks) {
    const tx = LABEL + x(tick);
    parts.push(
      `<line x1="${tx}" y1="${y - 4}" x2="${tx}" y2="${y + height}" stroke="#ddd"/>`,
      `<text x="${tx}" y="${y + height + 12}" font-size="10" text-anchor="middle" fill="#666">${escapeXml(
        format(Number(tick.toPrecision(2)), figures[0]?.unit ?? ''),
      )}</text>`,
    );
  }
  for (const figure of figures) {
    const width = Math.max(1, x(figure.value));
    const settings = figure.settings === 'best' ? ' (best)' : '';
    parts.push(
      `<text x="${LABEL - 6}" y="${y + BAR - 3}" font-size="11" text-anchor="end">${escapeXml(
        figure.label + settings,
      )}</text>`,
      `<rect x="${LABEL}" y="${y}" width="${width}" height="${BAR}" fill="${COLORS[figure.system]}"/>`,
    );
    let end = LABEL + width;
    if (figure.p99 !== undefined) {
      const p99 = LABEL + x(figure.p99);
      parts.push(
        `<line x1="${p99}" y1="${y - 1}" x2="${p99}" y2="${y + BAR + 1}" stroke="#222" stroke-width="2"/>`,
      );
      end = Math.max(end, p99);
    }
    const value =
      figure.p99 === undefined
        ? format(figure.value, figure.unit)
        : `${figure.value} / ${figure.p99} ms`;
    parts.push(
      `<text x="${end + 4}" y="${y + BAR - 3}" font-size="10" fill="#333">${escapeXml(value)}</text>`,
    );
    y += BAR + GAP;
  }
  return [parts.join('\n'), y + 20];
}

/**
 * Renders the chart.
 *
 * @param figures - every figure of a run
 * @param subtitle - the machine and date, under the title
 */
export function renderChart(figures: readonly Figure[], subtitle: string): string {
  const pick = (prefix: string) => figures.filter((figure) => figure.id.startsWith(prefix));
  const panels: Panel[] = [
    { title: 'Publish, Redis (msg/s, log scale)', figures: pick('publish.redis.'), scale: 'log' },
    { title: 'Publish, RabbitMQ (msg/s, log scale)', figures: pick('publish.amqp.'), scale: 'log' },
    {
      title: 'Drain, Redis (msg/s, log scale)',
      figures: [...pick('drain.redis.'), ...pick('floor.redis.brpop')],
      scale: 'log',
    },
    {
      title: 'Drain, RabbitMQ (msg/s, log scale)',
      figures: [...pick('drain.amqp.'), ...pick('floor.amqp.consume')],
      scale: 'log',
    },
    {
      title: 'Latency publish → start, Redis, idle worker (p50 bar, p99 mark, ms)',
      figures: pick('latency.redis.'),
      scale: 'linear',
    },
    {
      title: 'Latency publish → start, RabbitMQ, idle worker (p50 bar, p99 mark, ms)',
      figures: pick('latency.amqp.'),
      scale: 'linear',
    },
  ];
  const shown = panels.filter((item) => item.figures.length > 0);
  const body: string[] = [];
  let y = 48;
  for (const item of shown) {
    const [svg, next] = panel(item, y);
    body.push(svg);
    y = next;
  }
  const legend = (Object.keys(COLORS) as System[])
    .map(
      (system, index) =>
        `<rect x="${8 + index * 150}" y="${y}" width="12" height="12" fill="${COLORS[system]}"/>` +
        `<text x="${24 + index * 150}" y="${y + 10}" font-size="11">${NAMES[system]}</text>`,
    )
    .join('\n');
  const height = y + 24;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif" role="img">`,
    `<title>${TITLE}</title>`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="8" y="20" font-size="16" font-weight="bold">${TITLE}</text>`,
    `<text x="8" y="36" font-size="11" fill="#555">${escapeXml(subtitle)}</text>`,
    ...body,
    legend,
    '</svg>',
    '',
  ].join('\n');
}
