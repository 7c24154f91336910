import express from 'express'
import { describe, expect, test } from 'vitest'
import { inject } from '../test-helpers'
import { allowHeader, routerOf } from './route-table'

describe('routerOf: 405 answers from the registered routes', () => {
  const app = express()
  app.use(
    routerOf((add) => {
      add('get', '/things/:id', (_req, res) => void res.json({ got: true }))
      add('delete', '/things/:id', (_req, res) => void res.json({ deleted: true }))
      add('post', '/other', (_req, res) => void res.json({ posted: true }))
    }),
  )
  app.use((_req, res) => void res.status(404).end())

  test.each([
    ['PUT', '/things/1', 'GET, HEAD, DELETE'],
    ['PATCH', '/things/1', 'GET, HEAD, DELETE'],
    ['OPTIONS', '/things/1', 'GET, HEAD, DELETE'],
    ['GET', '/other', 'POST'],
  ])('%s %s: 405 with Allow %s', async (method, url, allow) => {
    const res = await inject(app, { method, url })
    expect(res.status).toBe(405)
    expect(res.headers.allow).toBe(allow)
    expect(res.json().detail.error).toMatchObject({
      code: 'method_not_allowed',
      message: `Use ${allow} on this path.`,
    })
  })

  test('registered methods still answer, other paths fall through', async () => {
    expect((await inject(app, { method: 'DELETE', url: '/things/1' })).json()).toEqual({ deleted: true })
    expect((await inject(app, { method: 'HEAD', url: '/things/1' })).status).toBe(200)
    expect((await inject(app, { url: '/nowhere' })).status).toBe(404)
  })

  test('allowHeader: fixed order, HEAD comes with GET', () => {
    expect(allowHeader(['delete', 'get'])).toBe('GET, HEAD, DELETE')
    expect(allowHeader(['head', 'get'])).toBe('GET, HEAD')
    expect(allowHeader(['post'])).toBe('POST')
  })
})
