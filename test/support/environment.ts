/** Run `work` with `NODE_ENV` set to `value`, and put the previous value back afterwards. */
export async function withNodeEnv<T>(value: string, work: () => T | Promise<T>): Promise<T> {
  const previous = process.env.NODE_ENV;
  process.env.NODE_ENV = value;
  try {
    return await work();
  } finally {
    if (previous === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = previous;
  }
}
