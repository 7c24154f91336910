/**
 * The status page in a real browser (Debian's Chromium through playwright-core), against a real
 * relay, agent and local server on 127.0.0.1: refused without the key, a login form that sets the
 * cookie, tunnel rows that update live after requests, and a screenshot that is not blank.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { launchBrowser, screenshotPath } from '@taskapp/test-utils'
import type { TestBrowser } from '@taskapp/test-utils'
import { startStack } from '../../test-helpers'

const ADMIN_KEY = 'admin-key-for-the-browser-test'

type Page = Awaited<ReturnType<Awaited<ReturnType<TestBrowser['context']>>['newPage']>>

/** Mean and standard deviation of a PNG's luminance, and its share of dark pixels, decoded by the browser. */
async function pixelStats(page: Page, png: Buffer): Promise<{ mean: number; sd: number; dark: number }> {
  await page.setContent('<canvas id="c"></canvas>')
  // a string, run in the page: this package's types have no DOM
  const script = `(async () => {
    const img = new Image()
    img.src = ${JSON.stringify(`data:image/png;base64,${png.toString('base64')}`)}
    await img.decode()
    const canvas = document.getElementById('c')
    canvas.width = img.width
    canvas.height = img.height
    const g = canvas.getContext('2d')
    g.drawImage(img, 0, 0)
    const { data } = g.getImageData(0, 0, img.width, img.height)
    let sum = 0, sq = 0, dark = 0
    const n = data.length / 4
    for (let i = 0; i < data.length; i += 4) {
      const y = 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2]
      sum += y
      sq += y * y
      if (y < 128) dark += 1
    }
    const mean = sum / n
    return { mean, sd: Math.sqrt(sq / n - mean * mean), dark: dark / n }
  })()`
  return page.evaluate<{ mean: number; sd: number; dark: number }>(script)
}

describe('the relay status page in Chromium', () => {
  it('refuses without the key, signs in by form, shows the tunnel and follows requests live', async () => {
    await using stack = await startStack((_req, res) => res.end('ok'), {
      relay: { adminKey: ADMIN_KEY, adminPort: 0 },
    })
    const { relay, tunnel } = stack
    const admin = relay.adminUrl!
    await using browser = await launchBrowser()
    const context = await browser.context()
    const page = await context.newPage()

    // on the main port (the tunnels' origin) there is no sign-in at all, only a pointer
    expect((await page.goto(`${relay.url}/admin`))?.status()).toBe(401)
    await page.locator('#admin-port-only').waitFor()
    expect(await page.locator('input[name="key"]').count()).toBe(0)

    // no key on the admin port: the login form, not the page
    const first = await page.goto(`${admin}/admin`)
    expect(first?.status()).toBe(401)
    await expect.poll(() => page.locator('#tunnels').count()).toBe(0)
    expect(await page.locator('input[name="key"][type="password"]').count()).toBe(1)

    // a key in the URL is refused outright
    const inUrl = await page.goto(`${admin}/admin?key=${ADMIN_KEY}`)
    expect(inUrl?.status()).toBe(400)

    await page.goto(`${admin}/admin`)
    await page.fill('input[name="key"]', 'not-the-admin-key-0000')
    await page.click('button[type="submit"]')
    await page.locator('#login-error').waitFor()
    expect(await page.locator('#tunnels').count()).toBe(0)

    await page.fill('input[name="key"]', ADMIN_KEY)
    await page.click('button[type="submit"]')
    await page.locator('#tunnels').waitFor()
    expect(page.url()).toBe(`${admin}/admin`)
    const cookies = await context.cookies()
    expect(cookies).toHaveLength(1)
    expect(cookies[0]).toMatchObject({
      name: 'taskapp_relay_admin',
      httpOnly: true,
      sameSite: 'Strict',
      path: '/admin',
    })
    expect(cookies[0]!.value).not.toContain(ADMIN_KEY)

    const short = `${tunnel.url.split('/s/')[1]!.slice(0, 8)}…`
    const row = page.locator('#tunnels tbody tr', { hasText: short })
    await row.waitFor()
    expect(await row.locator('[data-f="agent"]').textContent()).toBe('attached')
    expect(await row.locator('[data-f="requests1m"]').textContent()).toBe('0')

    // requests through the tunnel: the row's counters move without a reload
    for (let i = 0; i < 3; i++) await (await fetch(`${tunnel.url}/x`, { headers: tunnel.headers })).text()
    await (await fetch(`${tunnel.url}/x`)).text() // no worker token: 401, an error
    await expect.poll(() => row.locator('[data-f="requests1m"]').textContent(), { timeout: 10_000 }).toBe('4')
    expect(await row.locator('[data-f="errors1m"]').textContent()).toBe('1')
    expect(await page.locator('[data-t="requests"]').textContent()).toBe('4')
    expect(await page.locator('#live').textContent()).toBe('live')

    const html = await page.content()
    for (const secret of [tunnel.workerToken, 'test-relay-key', ADMIN_KEY, tunnel.url.split('/s/')[1]!]) {
      expect(html).not.toContain(secret)
    }

    const path = screenshotPath('relay-status.png')
    const png = await page.screenshot({ path, fullPage: true })
    expect(readFileSync(path).length).toBe(png.length)
    expect(png.length).toBeGreaterThan(5_000)
    const stats = await pixelStats(await context.newPage(), png)
    expect(stats.sd, 'the screenshot is not one flat colour').toBeGreaterThan(10)
    expect(stats.dark, 'some text was drawn').toBeGreaterThan(0.005)
  })

  it('sign out drops the cookie: the next visit gets the form', async () => {
    await using stack = await startStack((_req, res) => res.end('ok'), {
      relay: { adminKey: ADMIN_KEY, adminPort: 0 },
    })
    await using browser = await launchBrowser()
    const page = await (await browser.context()).newPage()
    await page.goto(`${stack.relay.adminUrl!}/admin`)
    await page.fill('input[name="key"]', ADMIN_KEY)
    await page.click('button[type="submit"]')
    await page.locator('#tunnels').waitFor()
    await page.click('text=Sign out')
    await page.locator('input[name="key"]').waitFor()
    expect((await page.goto(`${stack.relay.adminUrl!}/admin`))?.status()).toBe(401)
  })
})
