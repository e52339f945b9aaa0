import { tool } from '@langchain/core/tools'
import { getCallContext } from '@mandate/langchain'
import { z } from 'zod'

/** The in-process billing API's resource identifier (the audience of its call credentials). */
export const BILLING_AUDIENCE = 'https://billing.demo.local/api'

interface Invoice {
  id: string
  customer: string
  amount: number
  currency: 'EUR'
  anomaly?: string
}

const INVOICES: readonly Invoice[] = [
  { id: 'INV-1001', customer: 'ACME GmbH', amount: 120, currency: 'EUR', anomaly: 'charged twice on 2026-11-02' },
  { id: 'INV-1002', customer: 'Globex SA', amount: 89, currency: 'EUR' },
  { id: 'INV-1003', customer: 'Initech BV', amount: 4200, currency: 'EUR', anomaly: 'amount 10× the usual plan price' },
]

export type ToolObserver = (line: string) => void

/** The billing tools, as ordinary LangChain tools; Mandate wraps them (withMandate) in the story. */
export function billingTools(observe: ToolObserver, nameOf: (did: string) => string = (d) => d) {
  const seen = (name: string) => {
    const ctx = getCallContext()
    observe(`${name} ran with its own credential: jti ${ctx.mandateId.slice(0, 8)}…, args #${ctx.argumentsDigest.slice(0, 8)}…, verified=${ctx.verified}`)
  }
  const listInvoices = tool(
    async ({ status }) => {
      seen('billing.list_invoices')
      const list = INVOICES.filter((i) => status !== 'anomalous' || i.anomaly)
      return JSON.stringify(list.map(({ id, customer, amount, anomaly }) => ({ id, customer, amount, anomaly })))
    },
    { name: 'billing_list_invoices', description: 'List invoices (optionally only anomalous ones).', schema: z.object({ status: z.enum(['all', 'anomalous']) }) },
  )
  const getInvoice = tool(
    async ({ id }) => {
      seen('billing.get_invoice')
      const inv = INVOICES.find((i) => i.id === id)
      return inv ? JSON.stringify(inv) : `no invoice ${id}`
    },
    { name: 'billing_get_invoice', description: 'Read one invoice.', schema: z.object({ id: z.string() }) },
  )
  const refund = tool(
    async ({ invoice, amount }) => {
      seen('billing.refund')
      const ctx = getCallContext()
      return `refunded ${amount} EUR on ${invoice}${ctx.approval ? ` (approved by ${nameOf(ctx.approval.approver)})` : ''}`
    },
    { name: 'billing_refund', description: 'Refund part of an invoice.', schema: z.object({ invoice: z.string(), amount: z.number() }) },
  )
  const exportCustomers = tool(
    async () => {
      seen('payments.export_customers')
      return 'exported every customer record'
    },
    { name: 'payments_export_customers', description: 'Export all customer payment data.', schema: z.object({ format: z.string() }) },
  )
  return { listInvoices, getInvoice, refund, exportCustomers }
}
