import { existsSync, statSync } from 'node:fs'
import { createServer } from 'node:http'
import { describe, expect, it } from 'vitest'
import { launchBrowser, screenshotPath, startRedisServer } from './index'

describe('startRedisServer', () => {
  it('runs a private redis-server on a Unix socket, survives a restart, and cleans up', async () => {
    const redis = await startRedisServer()
    const client = redis.client()
    const key = `${redis.prefix()}k`
    expect(redis.prefix()).not.toBe(redis.prefix())
    await client.set(key, 'v')
    expect(await client.get(key)).toBe('v')
    await redis.restart()
    // no persistence: a restarted server starts empty, and the client reconnects by itself
    await expect.poll(() => client.get(key).catch(() => 'error'), { timeout: 10_000 }).toBeNull()
    await redis.close()
    await redis.close()
    expect(existsSync(redis.socketPath)).toBe(false)
  })
})

describe('launchBrowser', () => {
  it('drives the system Chromium against a loopback page and takes a screenshot', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end('<!doctype html><title>t</title><button onclick="this.textContent=\'clicked\'">go</button>')
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const { port } = server.address() as { port: number }
    try {
      await using browser = await launchBrowser()
      const page = await (await browser.context()).newPage()
      await page.goto(`http://127.0.0.1:${port}/`)
      await page.click('button')
      expect(await page.textContent('button')).toBe('clicked')
      const file = screenshotPath('test-utils-smoke.png')
      await page.screenshot({ path: file })
      expect(statSync(file).size).toBeGreaterThan(500)
    } finally {
      server.close()
    }
  })
})
